"""One GSM8K evaluation as the tests run it: load, evaluate against the PyTorch reference, write the
JSON report, print the summary line and record the junit and performance figures."""

from __future__ import annotations

import os

from .. import load_model
from ..gsm8k.evaluate import Settings, evaluate, summary_line, write_report
from . import options
from .meshes import mesh_name
from .reports import gsm8k_report_dir, record_model, write_perf_report


def run_gsm8k(request, mesh, path, tokenizer, problems, train, protocol, dtype, cache_dir, label,
              max_new_tokens=None):
    """Evaluate on ``mesh`` with the PyTorch reference; writes the JSON report and records properties."""
    cfg = request.config
    settings = Settings(protocol, max_new_tokens or options.get(cfg, "--gsm8k-max-new-tokens"),
                        options.get(cfg, "--gsm8k-batch-size"), dtype)
    model = load_model(path, mesh, dtype=dtype)
    report = evaluate(model, path, tokenizer, problems, settings, train, reference=True, cache_dir=cache_dir,
                      rerun_reference=options.get(cfg, "--gsm8k-rerun-reference"), mesh=mesh_name(mesh))
    report["label"] = label
    report_dir = gsm8k_report_dir(cfg)
    out = os.path.join(report_dir, f"gsm8k-{label}-{protocol.name}-{dtype}-mesh_{mesh_name(mesh)}.json")
    write_report(report, out)
    print("\n" + summary_line(report))
    write_perf_report(cfg, request.node.nodeid, {"gsm8k_tokens_per_second": report["tokens_per_second"],
                                                 "gsm8k_accuracy": report["accuracy"], "mesh": mesh_name(mesh)})
    record_model(request.node, f"{label}-gsm8k", mesh,
                 gsm8k_accuracy=report["accuracy"], gsm8k_reference_accuracy=report["reference"]["accuracy"],
                 gsm8k_agreement=report["reference"]["answer_agreement"], report_path=out)
    return report
