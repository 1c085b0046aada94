"""tt-xla's test properties for this suite: the ``record_test_properties`` marker and the junit
``tags`` / ``owner`` / ``group`` user properties its dashboards read.

tt-xla's root conftest turns each test's ``record_test_properties(...)`` marker into one
``tags`` property (a dict of ``test_name``, ``specific_test_case`` and the marker's keys,
values as strings), an ``owner`` property (``tt-xla``) and, for tests marked ``model_test``, a
``group`` property; it refuses unknown keys and model tests without one of its two mandatory
key sets. This module

* gives every test of the suite its marker (``mark_items``, run first at collection), so
  inside tt-xla its own conftest makes the properties from them;
* makes the same properties when no tt-xla conftest did (``add_tags``, run last), with the
  same validation, so a standalone run's junit file reads the same;
* writes the measured ``pcc`` and ``atol`` into the test's tags at run time (``set_measured``).
"""

from __future__ import annotations

import os

ALLOWED_KEYS = ("category", "jax_op_name", "torch_op_name", "shlo_op_name", "model_name", "model_group",
                "model_info", "run_mode", "parallelism", "bringup_status", "execution_pass", "pcc", "atol")
NEW_MANDATORY = ("model_info", "run_mode", "bringup_status")
OLD_MANDATORY = ("model_name", "model_group", "run_mode", "bringup_status")
OWNER = "tt-xla"

# tt-xla's build_model_name(Framework.JAX, "qwen2_5", "7b_instruct", ModelTask.NLP_CAUSAL_LM, ModelSource.HUGGING_FACE)
MODEL_NAME = "jax_qwen2_5_7b_instruct_nlp_causal_lm_huggingface"
MODEL_GROUP = "generality"  # str(ModelGroup.GENERALITY)
RUN_MODE = "inference"      # str(RunMode.INFERENCE)
PASSED = "PASSED"           # str(BringupStatus.PASSED): tt-xla's enum prints its name
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package top


def validate_keys(keys, model_test: bool) -> None:
    """tt-xla's rules: allowed keys only; a model test has exactly one of the mandatory key sets."""
    bad = [k for k in keys if k not in ALLOWED_KEYS]
    if bad:
        raise KeyError(f"Invalid keys found in 'record_test_properties' marker: {', '.join(bad)}. "
                       f"Allowed keys are: {', '.join(ALLOWED_KEYS)}")
    if model_test:
        new = all(k in keys for k in NEW_MANDATORY)
        old = all(k in keys for k in OLD_MANDATORY)
        if new == old:
            raise KeyError(f"Model tests must have either new properties: {list(NEW_MANDATORY)} "
                           f"or old properties: {list(OLD_MANDATORY)}.")


def parallelism(shape) -> str:
    """tt-forge-models' Parallelism value for a (batch, model) mesh."""
    batch, model = shape
    if batch * model == 1:
        return "single_device"
    return "tensor_parallel" if model > 1 else "data_parallel"


def _mesh_shape(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    for value in params.values():
        shape = getattr(value, "mesh", value)  # tt_compile cases carry .mesh
        if isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(v, int) for v in shape):
            return shape
    for mark, shape in (("single_device", (1, 1)), ("llmbox", (1, 8)), ("galaxy", (1, 32))):
        if item.get_closest_marker(mark):
            return shape
    return None


def ours(item) -> bool:
    return os.path.abspath(str(item.path)).startswith(PACKAGE_DIR + os.sep)


def mark_items(items, pytest) -> None:
    """Give each of this suite's tests tt-xla's marker (unless it carries one already)."""
    for item in items:
        if not ours(item) or item.get_closest_marker("record_test_properties"):
            continue
        if item.get_closest_marker("model_test"):
            props = dict(category="model_test", model_name=MODEL_NAME, model_group=MODEL_GROUP, run_mode=RUN_MODE,
                         bringup_status=PASSED)
            shape = _mesh_shape(item)
            if shape is not None:
                props["parallelism"] = parallelism(shape)
            item.add_marker(pytest.mark.record_test_properties(**props))
            item.add_marker(pytest.mark.inference)
            item.add_marker(pytest.mark.expected_passing)
        else:
            item.add_marker(pytest.mark.record_test_properties(category="other"))


def add_tags(items) -> None:
    """tt-xla's conversion of the marker into user properties, for items it did not convert."""
    for item in items:
        if not ours(item) or any(name == "tags" for name, _ in item.user_properties):
            continue
        tags = {"test_name": item.originalname, "specific_test_case": item.name}
        marker = item.get_closest_marker("record_test_properties")
        model_test, group = False, None
        if marker:
            model_test = item.get_closest_marker("model_test") is not None
            validate_keys(marker.kwargs.keys(), model_test)
            for key, value in marker.kwargs.items():
                if key == "model_group":
                    group = str(value)
                else:
                    tags[key] = str(value)
        item.user_properties.extend([("tags", tags), ("owner", OWNER)])
        if model_test:
            item.user_properties.append(("group", group))


def set_measured(node, pcc: float, atol: float) -> None:
    """Write a test's measured pcc and atol into its tags (read when the junit file is written)."""
    for name, value in node.user_properties:
        if name == "tags" and isinstance(value, dict):
            value["pcc"] = str(pcc)
            value["atol"] = str(atol)
