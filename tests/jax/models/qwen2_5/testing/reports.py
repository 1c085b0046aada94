"""Where a test's records go: its junit properties beyond tt-xla's tags, the performance reports
(``--perf-report-dir``) and the report and IR folders under ``reports/``."""

from __future__ import annotations

import json
import os

from . import options
from .meshes import mesh_name
from .properties import set_measured


def record_model(node, checkpoint: str, mesh, report: dict = None, **extra) -> None:
    """The test's junit properties beyond tt-xla's tags: checkpoint, mesh and extras; a measured
    logits report's pcc and atol go into the tags (``properties.set_measured``)."""
    node.user_properties.append(("checkpoint", checkpoint))
    node.user_properties.append(("mesh", mesh_name(mesh)))
    tt_options = {}
    if mesh.devices.flat[0].platform == "tt" or node.config.qwen_platform == "tt-emulated":  # the tt-mlir options
        from ..model.causal_lm import TT_COMPILER_OPTIONS

        tt_options = dict(TT_COMPILER_OPTIONS)
        node.user_properties.append(("tt_compiler_options", json.dumps(tt_options, sort_keys=True)))
    if report is not None:
        set_measured(node, report["pcc"], report["atol"])
        write_perf_report(node.config, node.nodeid, {"pcc": report["pcc"], "atol": report["atol"],
                                                     "checkpoint": checkpoint, "mesh": mesh_name(mesh),
                                                     **({"tt_compiler_options": tt_options} if tt_options else {})})
    for key, value in extra.items():
        node.user_properties.append((key, value))


def report_dir_for(config, kind: str, nodeid: str) -> str:
    """reports/<kind>/<test id as a file name> under the root directory (created)."""
    name = "".join(c if c.isalnum() or c in "._-[]" else "_" for c in nodeid.split("::", 1)[-1])
    path = os.path.join(str(config.rootpath), "reports", kind, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_perf_report(config, nodeid: str, figures: dict):
    """--perf-report-dir: one JSON file of a test's measured figures (unless --disable-perf-measurement)."""
    out_dir = options.get(config, "--perf-report-dir")
    if not out_dir or options.get(config, "--disable-perf-measurement"):
        return None
    os.makedirs(out_dir, exist_ok=True)
    perf_id = options.get(config, "--perf-id") or "qwen2_5"
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in nodeid.split("::", 1)[-1])
    path = os.path.join(out_dir, f"{perf_id}_{name}.json")
    with open(path, "w") as f:
        json.dump({"perf_id": perf_id, "test": nodeid, "figures": figures}, f, indent=1, sort_keys=True)
    return path


def gsm8k_report_dir(config) -> str:
    path = options.get(config, "--gsm8k-report-dir")
    return path if os.path.isabs(path) else os.path.join(str(config.rootpath), path)
