"""The FileCheck subset and the TTNN reader that the Tenstorrent audits rely on, on hand-written IR."""

import pytest

from .tenstorrent.ttnn import audit as ttnn_audit, filecheck
from .tenstorrent.ttnn.module import parse
from .tenstorrent.compile.jobs import tt_python

pytestmark = pytest.mark.cpu

MODULE = """\
func.func private @main_const_eval_0() -> tensor<1xf32> attributes {tt.function_type = "const_eval"} {
  %0 = "ttnn.to_layout"(%c) : (tensor<1xf32>) -> tensor<1xf32>
}
func.func public @main(%arg0: tensor<8xbf16> {ttcore.argument_type = #ttcore.argument_type<input>}, \
%arg1: tensor<8xbf16> {ttcore.argument_type = #ttcore.argument_type<parameter>}) -> (tensor<8xbf16>) {
  %0 = "ttnn.all_reduce"(%arg0) : (tensor<8xbf16>) -> tensor<8xbf16>
  %1 = "ttnn.matmul"(%0, %arg1) : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
  "ttnn.deallocate"(%0) : (tensor<8xbf16>) -> ()
  %2 = "ttnn.all_reduce"(%1) : (tensor<8xbf16>) -> tensor<8xbf16>
  %3 = "ttnn.reshape"(%2) : (tensor<8xbf16>) -> tensor<8xbf16>
}
"""

PATTERN = """\
// IMPLICIT-CHECK-NOT: "ttnn.all_gather"
// CHECK-LABEL: func.func public @main(
// CHECK-COUNT-$N: "ttnn.all_reduce"
// CHECK-NOT: "ttnn.all_reduce"
// CHECK: "ttnn.{{resh[a-z]+}}"
"""


def test_filecheck_accepts_the_exact_count():
    filecheck.check(PATTERN, MODULE, {"N": 2})


@pytest.mark.parametrize("n", [1, 3])
def test_filecheck_rejects_another_count(n):
    with pytest.raises(filecheck.FileCheckError, match="all_reduce"):
        filecheck.check(PATTERN, MODULE, {"N": n})


def test_filecheck_implicit_check_not_covers_the_block():
    bad = MODULE.replace('%3 = "ttnn.reshape"', '%3 = "ttnn.all_gather"(%2)\n  %4 = "ttnn.reshape"')
    with pytest.raises(filecheck.FileCheckError, match="IMPLICIT-CHECK-NOT"):
        filecheck.check(PATTERN, bad, {"N": 2})


def test_filecheck_label_must_match():
    with pytest.raises(filecheck.FileCheckError, match="CHECK-LABEL"):
        filecheck.check(PATTERN.replace("@main(", "@missing("), MODULE, {"N": 2})


def test_ttnn_reader_functions_histogram_and_arguments():
    module = parse(MODULE)
    assert sorted(module.functions) == ["main", "main_const_eval_0"]
    assert ttnn_audit.histogram(module.main) == {"all_reduce": 2, "matmul": 1, "reshape": 1}
    assert ttnn_audit.histogram(module.main, include_deallocate=True)["deallocate"] == 1
    assert ttnn_audit.argument_types(module.main) == {"input": 1, "parameter": 1}
    assert ttnn_audit.main_function(MODULE).ops[1].operands == ["%0", "%arg1"]


def test_per_layer_is_the_difference_over_the_layer_span():
    many = {"matmul": 2 * 28 + 1, "reshape": 3 * 28, "softmax": 28}
    one = {"matmul": 2 + 1, "reshape": 3, "softmax": 1, "argmax": 1}
    assert ttnn_audit.per_layer(many, 28, one, 1) == {"matmul": 2, "reshape": 3, "softmax": 1,
                                                      "argmax": round(-1 / 27, 2)}


def test_without_a_plugin_the_checks_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.delenv("QWEN2_5_TT_PYTHON", raising=False)
    monkeypatch.setattr("importlib.metadata.distribution", _missing)
    python, why = tt_python(None, str(tmp_path))
    assert python is None and "pip install -r requirements-tt.txt" in why
    python, why = tt_python(str(tmp_path / "nope"), str(tmp_path))
    assert python is None and "does not exist" in why


def _missing(name):
    import importlib.metadata

    raise importlib.metadata.PackageNotFoundError(name)


def test_compile_failure_shows_the_first_compiler_error_lines():
    from .tenstorrent.compile.worker import error_excerpt, last_module

    log = ("info: start\n"
           "loc(\"x\"): error: failed to legalize operation 'stablehlo.all_reduce'\n"
           "note: see current operation\n") + "".join(f"error: more {i}\n" for i in range(40))
    text = error_excerpt(log, RuntimeError("Error code: 13\nsecond line"))
    lines = text.splitlines()
    assert lines[0] == "RuntimeError: Error code: 13"
    assert "failed to legalize operation 'stablehlo.all_reduce'" in lines[1]
    assert len(lines) == 1 + 12  # the first twelve compiler error lines, not the whole log
    staged = ("x MLIR Module ttir:\nmodule {ttir}\n------------------ END OF MLIR MODULE ------------------\n"
              "x MLIR Module ttnn:\n#loc1 = loc(\"a\")\nmodule {ttnn}\n------ END OF MLIR MODULE ------\n")
    assert last_module(staged) == "module {ttnn}" and last_module(staged, "ttir") == "module {ttir}"
