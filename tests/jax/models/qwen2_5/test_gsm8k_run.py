"""The GSM8K acceptance run as one command: the reference and three meshes of the default random
checkpoint in a run directory, killed with SIGKILL at several points and resumed, must give the same
report as a run that was never interrupted; a run directory's bad input fails in one line."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from .gsm8k import journal

pytestmark = [pytest.mark.cpu, pytest.mark.gsm8k]

ROOT = pathlib.Path(__file__).resolve().parents[4]
MESHES = ["1x1", "2x4", "1x32"]
ARGS = ["--meshes", ",".join(MESHES), "--samples", "8", "--batch-size", "2", "--max-new-tokens", "12"]
BATCHES = 4  # 8 problems, 2 per batch


def _env(gsm8k_path):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "QWEN2_5_MODEL_PATH")}
    env["GSM8K_PATH"] = gsm8k_path
    return env


def command(*args):
    return [sys.executable, "-m", "tests.jax.models.qwen2_5.gsm8k", *args]


def run(args, gsm8k_path, timeout=600):
    return subprocess.run(command(*args), cwd=ROOT, env=_env(gsm8k_path), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def gsm8k_path():
    path = os.environ.get("GSM8K_PATH")
    if not path or not os.path.exists(path):
        pytest.skip("needs the local GSM8K copy: set GSM8K_PATH (e.g. ../shared/data/gsm8k)")
    return path


@pytest.fixture(scope="module")
def uninterrupted(gsm8k_path, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("gsm8k_run") / "whole"
    proc = run(ARGS + ["--run-dir", str(run_dir)], gsm8k_path)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, json.loads((run_dir / "report.json").read_text()), run_dir


def counts(run_dir):
    """{run: batches journaled} (a torn last line is not counted)."""
    _, lines, _ = journal.read(journal.path_in(str(run_dir)))
    return {run: len(b) for run, b in journal.done_batches(lines).items()}


def kill_when(args, gsm8k_path, condition, run_dir, timeout=300):
    """Start the command in a session of its own; SIGKILL the whole session once ``condition(counts)``."""
    proc = subprocess.Popen(command(*args), cwd=ROOT, env=_env(gsm8k_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if os.path.isfile(journal.path_in(str(run_dir))) and condition(counts(run_dir)):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return counts(run_dir)
            if proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {proc.returncode}) before the kill point")
            time.sleep(0.02)
        raise AssertionError("the kill point never came")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_multi_mesh_run_reports_every_mesh_with_the_parity_rule(uninterrupted):
    proc, report, run_dir = uninterrupted
    assert sorted(report["meshes"]) == sorted(MESHES) and report["problems"] == 8
    for mesh, m in report["meshes"].items():
        assert len(m["records"]) == 8 and m["identical_completions"] == 8, mesh  # float32 on the CPU
        vs_ref, vs_1x1 = m["parity"]["vs_reference"], m["parity"]["vs_1x1"]
        assert set(vs_ref) >= {"delta", "ci95", "discordant", "p_value", "holds"} and vs_ref["discordant"] == [0, 0]
        assert (vs_1x1 is None) == (mesh == "1x1")
    # eight problems cannot show a 2-point parity (the interval is tens of points wide): exit status 1
    assert report["parity"] is False and proc.returncode == 1
    summary = (run_dir / "summary.md").read_text()
    assert all(f"| {mesh} |" in summary for mesh in MESHES) and "| PyTorch |" in summary
    assert "vs_reference" in proc.stdout and "parity" in proc.stdout


def test_killed_and_resumed_run_equals_an_uninterrupted_one(uninterrupted, gsm8k_path, tmp_path):
    _, whole, _ = uninterrupted
    run_dir = tmp_path / "killed"
    args = ARGS + ["--run-dir", str(run_dir)]
    # 1. during the reference: after its first batch, before its last
    seen = kill_when(args, gsm8k_path, lambda c: c.get("reference", 0) >= 1, run_dir)
    assert 1 <= seen["reference"] < BATCHES and "1x1" not in seen, seen
    # 2. between meshes: 1x1 complete, 2x4 not started
    resume = args + ["--resume"]
    seen = kill_when(resume, gsm8k_path, lambda c: c.get("1x1", 0) == BATCHES, run_dir)
    assert seen["reference"] == BATCHES and seen["1x1"] == BATCHES and "2x4" not in seen, seen
    # 3. mid-batch: 2x4's first batch journaled, the next in flight
    seen = kill_when(resume, gsm8k_path, lambda c: c.get("2x4", 0) >= 1, run_dir)
    assert 1 <= seen["2x4"] < BATCHES, seen
    # 4. a torn last line, as a kill in the middle of a write leaves it
    with open(journal.path_in(str(run_dir)), "ab") as f:
        f.write(b'{"batch":3,"ids":["test-6"],"kind":"batch","run":"2x4","tokens":[[1,2')
    finished = run(resume, gsm8k_path)
    assert "torn last line was dropped" in finished.stderr, finished.stderr[-3000:]
    assert finished.returncode == (0 if whole["parity"] else 1), finished.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["reference"]["records"] == whole["reference"]["records"]
    for mesh in MESHES:
        assert report["meshes"][mesh]["records"] == whole["meshes"][mesh]["records"], mesh
        assert report["meshes"][mesh]["parity"] == whole["meshes"][mesh]["parity"], mesh
    assert counts(run_dir) == {run: BATCHES for run in ["reference"] + MESHES}


def test_a_journal_for_other_settings_or_another_checkpoint_is_refused(uninterrupted, gsm8k_path):
    _, _, run_dir = uninterrupted
    other = run(ARGS[:-1] + ["13", "--run-dir", str(run_dir), "--resume"], gsm8k_path)
    assert other.returncode == 2 and other.stderr.strip().count("\n") == 0, other.stderr[-2000:]
    assert "settings.max_new_tokens: the journal has 12, this run 13" in other.stderr, other.stderr
    ckpt = run(ARGS + ["--run-dir", str(run_dir), "--resume", "--model-path", str(run_dir / "..")], gsm8k_path)
    assert ckpt.returncode == 2 and "another checkpoint" in ckpt.stderr and "Traceback" not in ckpt.stderr, ckpt.stderr
    again = run(ARGS + ["--run-dir", str(run_dir)], gsm8k_path)
    assert again.returncode == 2 and "holds a journal already" in again.stderr, again.stderr


def test_journal_drops_a_torn_last_line_and_names_a_difference(tmp_path):
    path = str(tmp_path / journal.NAME)
    header = {"settings": {"max_new_tokens": 12, "dtype": "float32"}, "problems": ["test-0", "test-1"]}
    journal.start(path, header)
    journal.append_batch(path, "reference", 0, ["test-0"], [[5, 6]], 0.1)
    with open(path, "ab") as f:
        f.write(b'{"kind":"batch","run":"reference","batch":1,"ids":["test-1"],"tok')
    got, batches, torn = journal.read(path)
    assert torn and [b["batch"] for b in batches] == [0] and got["settings"] == header["settings"]
    assert journal.repair(path) and not journal.repair(path)
    assert journal.read(path)[2] is False and open(path, "rb").read().endswith(b"\n")
    assert journal.difference(got, header) is None
    other = dict(header, settings={"max_new_tokens": 13, "dtype": "float32"})
    assert journal.difference(got, other) == "settings.max_new_tokens: the journal has 12, this run 13"
    assert journal.difference(got, dict(header, problems=["test-0"])) == "problems: the journal has 2 entries, this run 1"
    with open(path, "r+b") as f:  # damage before the last line (the header's closing brace) is not a torn write
        data = f.read()
        f.seek(0)
        f.truncate()
        f.write(data.replace(b"}\n", b"\n", 1))
    with pytest.raises(journal.JournalError, match="damaged"):
        journal.read(path)


def test_an_emulated_journal_is_bound_to_its_targets_and_arithmetic():
    from .gsm8k import run
    from .gsm8k.data import Problem

    class Settings:
        def describe(self):
            return {"max_new_tokens": 4}

    def header(**kw):
        return run.header_for(Settings(), [Problem("test-0", "Q?", "#### 1", "1")], {"class": "t"}, ["x"], [2], 0,
                              [[1, 2]], "tt-emulated", 64, **kw)

    exact = header(tt_targets={"1x1": "blackhole_p150"})
    chip = header(tt_targets={"1x1": "blackhole_p150"}, tt_arithmetic="chip")
    assert chip["tt_arithmetic"] == "chip" and "tt_arithmetic" not in exact
    assert journal.difference(exact, chip) == 'tt_arithmetic: the journal has null, this run "chip"'
    assert "tt_arithmetic" not in header(tt_arithmetic="chip")  # no targets: not emulated, nothing to bind
