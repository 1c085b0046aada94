"""The suite's place in tt-xla's CI: its test-matrix entries select every test once, each on the runner that has
its meshes; every collected test has a duration (a new test cannot send a job to tt-xla's 240-minute default);
the duration rule, the junit reader and the merge, on cases worked by hand. ``.ci/run`` replays the job itself
with tt-xla's scripts (``ci-replay``)."""

import json

import pytest

from .ttxla_ci import DURATIONS_FILE, ENTRY_FILES
from .ttxla_ci import durations as du
from .ttxla_ci.collection import markers, selects
from .ttxla_ci.replay import DIR, RUNNER_MESHES, entries, meshes, pytest_args, runs_on

pytestmark = pytest.mark.cpu

REQUIRED = ("runs-on", "name", "dir", "test-mark")
# tt-xla's preset fields (test-matrix-presets/README.md) and what generate_test_matrix.py adds
KNOWN = set(REQUIRED) | {"parallel-groups", "shared-runners", "require", "args", "contains", "forge-models", "forked",
                         "extra-wheel"}


@pytest.fixture(scope="module")
def collected():
    """{test id: its marker names}, collected as tt-xla collects the package (one subprocess)."""
    return markers()


def all_entries():
    return [(preset, e) for preset, path in ENTRY_FILES.items() for e in entries(path)]


def test_entries_are_tt_xla_preset_entries_for_the_package():
    assert set(ENTRY_FILES) == {"basic-test.json", "basic-test-nightly.json"}
    for preset, entry in all_entries():
        assert all(entry.get(k) for k in REQUIRED), (preset, entry)
        assert set(entry) <= KNOWN, (preset, sorted(set(entry) - KNOWN))
        assert entry["dir"] == DIR and runs_on(entry) in RUNNER_MESHES, (preset, entry)
        if "shared-runners" in entry:
            assert entry["shared-runners"] in ("true", "false"), entry
    runners = {(preset, runs_on(e)) for preset, e in all_entries()}
    assert {("basic-test.json", "n300-llmbox"), ("basic-test-nightly.json", "n300-llmbox"),
            ("basic-test-nightly.json", "galaxy-wh-6u"), ("basic-test.json", "cpu")} <= runners


def test_every_test_is_selected_by_exactly_one_entry_on_a_runner_with_its_mesh(collected):
    where = {nid: [(p, runs_on(e)) for p, e in all_entries() if selects(e["test-mark"], names)]
             for nid, names in collected.items()}
    nowhere = sorted(nid for nid, hits in where.items() if not hits)
    twice = sorted(f"{nid}: {hits}" for nid, hits in where.items() if len(hits) > 1)
    assert not nowhere, f"{len(nowhere)} tests no entry selects, e.g. {nowhere[:5]}"
    assert not twice, f"{len(twice)} tests two entries select, e.g. {twice[:5]}"
    for nid, [(preset, runner)] in where.items():
        have = meshes([nid])
        if "tt_compile" in collected[nid]:
            assert runner == "cpu", f"{nid}: a compile-only check runs on the CPU runner, not {runner}"
        else:
            assert have <= RUNNER_MESHES[runner], f"{nid} ({preset}) needs {have}; {runner} has {RUNNER_MESHES[runner]}"
        if "large" in collected[nid]:
            assert preset == "basic-test-nightly.json", f"{nid}: a large test runs nightly"
        if "cpu" in collected[nid]:
            assert runner == "cpu", f"{nid}: a cpu test runs on the CPU runner"


def test_every_collected_test_has_a_duration(collected):
    with open(DURATIONS_FILE) as f:
        durations = json.load(f)
    missing = sorted(set(collected) - set(durations))
    stale = sorted(set(durations) - set(collected))
    remeasure = ("remeasure: python -m tests.jax.models.qwen2_5 ci-durations reports/junit.xml (after a run of the "
                 "suite; see docs/ttxla_ci.md)")
    assert not missing, f"{len(missing)} collected tests have no duration, e.g. {missing[:3]}; {remeasure}"
    assert not stale, f"{len(stale)} durations name no collected test, e.g. {stale[:3]}; {remeasure}"
    assert all(isinstance(v, (int, float)) and v >= du.FLOOR_SECONDS for v in durations.values())


def test_duration_rule_worked_by_hand():
    # a unit test of 3.04 s on the CPU runner: 2 x 3.04 = 6.08, rounded up to a tenth
    assert du.estimate(3.04, 0, on_chips=False, large=False) == 6.1
    # a model test of 10 s that compiled 2 programs, on chips: 2 x (10 + 2 x 12)
    assert du.estimate(10.0, 2, on_chips=True, large=False) == 2 * (10 + 2 * du.TT_COMPILE_SECONDS["small"])
    # a 7B-geometry test: each compile at the 7B figure
    assert du.estimate(100.0, 1, on_chips=True, large=True) == 2 * (100 + du.TT_COMPILE_SECONDS["7b"])
    assert du.estimate(0.01, 0, on_chips=False, large=False) == du.FLOOR_SECONDS


def test_fragment_estimates_skipped_and_new_tests():
    ids = ["a.py::t[1]", "a.py::t[2]", "a.py::t[3]", "a.py::other"]
    cases = {"a.py::t[1]": {"seconds": 5.0, "compiles": 1, "skipped": False},
             "a.py::t[2]": {"seconds": 0.2, "compiles": 0, "skipped": True}}
    got = du.fragment(cases, ids, cpu=set(), large=set())
    assert got["a.py::t[1]"] == 2 * (5 + du.TT_COMPILE_SECONDS["small"])
    assert got["a.py::t[2]"] == du.FLOOR_SECONDS                       # skipped here and in the entries
    assert got["a.py::t[3]"] == got["a.py::t[1]"]                      # new: the longest of the same test function
    assert got["a.py::other"] == du.NEW_TEST_SECONDS


def test_junit_cases_become_tt_xla_test_ids(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="pytest">'
                    '<testcase classname="tests.jax.models.qwen2_5.test_logits" name="test_logits_parity[mesh_2x4-f32]" '
                    'time="12.5"><properties><property name="xla_compiles" value="3"/></properties></testcase>'
                    '<testcase classname="tests.jax.models.qwen2_5.test_gsm8k" name="test_real[mesh_1x1]" time="0.01">'
                    '<skipped message="no checkpoint"/></testcase>'
                    '<testcase classname="tests.other.test_x" name="test_y" time="1"/>'
                    '</testsuite></testsuites>')
    got = du.measured([str(path)])
    assert got == {"tests/jax/models/qwen2_5/test_logits.py::test_logits_parity[mesh_2x4-f32]":
                   {"seconds": 12.5, "compiles": 3, "skipped": False},
                   "tests/jax/models/qwen2_5/test_gsm8k.py::test_real[mesh_1x1]":
                   {"seconds": 0.01, "compiles": 0, "skipped": True}}


def test_merge_sets_the_suite_s_entries_and_keeps_the_others(tmp_path):
    theirs = tmp_path / ".test_durations"
    theirs.write_text(json.dumps({"tests/torch/test_a.py::t": 3.0, "tests/jax/models/qwen2_5/test_x.py::old": 9.0}))
    ours = tmp_path / "fragment.json"
    ours.write_text(json.dumps({"tests/jax/models/qwen2_5/test_x.py::old": 1.5, "tests/jax/models/qwen2_5/test_x.py::new": 2.0}))
    assert du.merge(str(ours), str(theirs)) == 2
    got = json.loads(theirs.read_text())
    assert list(got) == ["tests/torch/test_a.py::t", "tests/jax/models/qwen2_5/test_x.py::old",
                         "tests/jax/models/qwen2_5/test_x.py::new"]
    assert got["tests/jax/models/qwen2_5/test_x.py::old"] == 1.5


def test_pytest_arguments_as_call_test_builds_them():
    entry = {"runs-on": "tt-ubuntu-2204-large-stable", "runs-on-original": "cpu", "name": "run", "dir": DIR,
             "test-mark": "cpu and not large", "args": "--platform cpu", "parallel-groups": 3, "group-id": 2,
             "shared-runners": True}
    assert pytest_args(entry) == ["--log-memory", "--durations=0", DIR, "-m", "cpu and not large", "--platform", "cpu",
                                  "--splits", "3", "--group", "2", "--splitting-algorithm", "least_duration"]
    plain = {"runs-on": "galaxy-wh-6u", "name": "run", "dir": DIR, "test-mark": "galaxy", "forked": True,
             "contains": "mesh_1x32"}
    assert pytest_args(plain) == ["--forked", "--log-memory", "--durations=0", DIR, "-m", "galaxy", "-k", "mesh_1x32",
                                  "--splits", "1", "--group", "1", "--splitting-algorithm", "least_duration"]
    assert runs_on(entry) == "cpu" and meshes(["t.py::a[mesh_1x8-bf16]", "t.py::b[x-mesh_8x4]"]) == {"1x8", "8x4"}



def test_a_case_that_ran_wins_over_one_that_skipped(tmp_path):
    """``.ci/run`` writes two junit files: the compile checks run standalone and skip in the harness's replay."""
    case = ('<testsuites><testsuite><testcase classname="tests.jax.models.qwen2_5.test_tt_compile" name="test_c[x]" '
            'time="{t}">{skip}</testcase></testsuite></testsuites>')
    ran, skipped = tmp_path / "ran.xml", tmp_path / "skipped.xml"
    ran.write_text(case.format(t="40.0", skip=""))
    skipped.write_text(case.format(t="0.2", skip='<skipped message="no plugin"/>'))
    nid = "tests/jax/models/qwen2_5/test_tt_compile.py::test_c[x]"
    for order in ([ran, skipped], [skipped, ran]):
        assert du.measured([str(p) for p in order])[nid]["seconds"] == 40.0
