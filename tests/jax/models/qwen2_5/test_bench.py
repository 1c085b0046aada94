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
    # a decode rate too short to measure (timing noise on a loaded machine) prints "-" with a note, never a number
    # below zero
    unmeasured = "decode '-':" in out.stdout
    decode = rf"(?:{number}+|-)" if unmeasured else rf"{number}+"
    ratio = rf"(?:{number}+x|-)" if unmeasured else rf"{number}+x"
    assert re.search(rf"^pytorch\s+-\s+{decode}\s+(?:1\.00x|-)\s+{number}+", out.stdout, re.M), out.stdout
    for mesh in ("1x1", "1x2"):
        assert re.search(rf"^jax\s+{mesh}\s+{decode}\s+{ratio}\s+{number}+", out.stdout, re.M), out.stdout
    floor = rf"^matmul floor \(1x1\): {number}+ tok/s" + ("" if unmeasured else rf" = {number}+x PyTorch")
    assert re.search(floor, out.stdout, re.M), out.stdout
    rows = re.findall(r"^(pytorch|jax)\s+(\S+)\s+([\d.]+)", out.stdout, re.M)
    write_perf_report(request.config, request.node.nodeid,
                      {"decode_tokens_per_second": {f"{b} {m}": float(v) for b, m, v in rows}})


def test_a_decode_rate_lost_in_timing_noise_is_not_measured():
    """The decode rate is the difference of two timings; where the 1-token run took longer it is nan (printed "-"),
    not a negative rate."""
    import argparse
    import math
    import time

    from .bench.decode import _measure

    got = _measure(lambda k: time.sleep(0.03 if k == 1 else 0.001), argparse.Namespace(batch=2, new_tokens=4, runs=1))
    assert math.isnan(got["decode"]) and got["e2e"] > 0 and got["ttft"] >= 0.03
    fine = _measure(lambda k: time.sleep(0.01 * k), argparse.Namespace(batch=2, new_tokens=4, runs=1))
    assert 2 * 3 / 0.03 * 0.5 < fine["decode"] < 2 * 3 / 0.03 * 1.5


def test_bench_rejects_a_bad_mesh():
    out = run_bench(["--meshes", "1x1,2*4"], timeout=120)
    assert out.returncode == 2
    assert "--meshes" in out.stderr and "BxM" in out.stderr
