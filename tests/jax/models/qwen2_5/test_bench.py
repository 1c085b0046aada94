"""The benchmark entry point runs end to end (a smoke test: it checks the report, not speed)."""

import pathlib
import re
import subprocess
import sys

import pytest

from .testing.reports import write_perf_report

pytestmark = pytest.mark.cpu

ROOT = pathlib.Path(__file__).resolve().parents[4]  # where `python -m tests.jax.models.qwen2_5.bench` resolves


def run_bench(args, timeout):
    return subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5.bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_bench_reports_every_backend_and_the_matmul_floor(request):
    out = run_bench(["--platform", "cpu", "--meshes", "1x1,1x2", "--runs", "1", "--rounds", "1", "--batch", "2",
                     "--prompt", "5", "--new-tokens", "4", "--hidden", "64", "--layers", "1", "--heads", "6",
                     "--kv-heads", "2", "--intermediate", "72", "--vocab", "101"], timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    number = r"\d+\.\d"
    assert re.search(rf"^pytorch\s+-\s+{number}+\s+1\.00x", out.stdout, re.M), out.stdout
    for mesh in ("1x1", "1x2"):
        assert re.search(rf"^jax\s+{mesh}\s+{number}+\s+{number}+x", out.stdout, re.M), out.stdout
    assert re.search(rf"^matmul floor \(1x1\): {number}+ tok/s = {number}+x PyTorch", out.stdout, re.M), out.stdout
    rows = re.findall(r"^(pytorch|jax)\s+(\S+)\s+([\d.]+)", out.stdout, re.M)
    write_perf_report(request.config, request.node.nodeid,
                      {"decode_tokens_per_second": {f"{b} {m}": float(v) for b, m, v in rows}})


def test_bench_rejects_a_bad_mesh():
    out = run_bench(["--meshes", "1x1,2*4"], timeout=120)
    assert out.returncode == 2
    assert "--meshes" in out.stderr and "BxM" in out.stderr
