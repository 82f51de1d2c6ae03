"""The `spatialmix` command: real subprocesses of the installed console scripts."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

BIN = os.path.dirname(sys.executable)
SPATIALMIX = os.path.join(BIN, "spatialmix")


def spatialmix(*args, cwd=None, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([SPATIALMIX, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.mark.parametrize("script", ["spatialmix", "spatialmix-tui", "spatialmix bench"])
def test_console_scripts_have_help(script):
    command = script.split()
    proc = subprocess.run([os.path.join(BIN, command[0]), *command[1:], "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_list_show_models():
    listed = spatialmix("list")
    assert listed.returncode == 0 and "convmixer-mixing" in listed.stdout
    shown = spatialmix("show", "convmixer-mixing")
    assert shown.returncode == 0
    for word in ("[smoke]", "[cpu]", "[paper]", "textures", "cifar10", "cells", "width=128"):
        assert word in shown.stdout, word
    models = spatialmix("models")
    assert models.returncode == 0
    for name in ("sep_resnet_cifar", "sep_resnet_imagenet", "convmixer", "convmixer_unshuffler"):
        assert name in models.stdout


def read_events(run_dir):
    with open(os.path.join(run_dir, "events.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_smoke_run_leaves_every_artefact_and_second_run_does_nothing(smoke_run):
    runs_dir, run_dir = smoke_run.runs_dir, smoke_run.run_dir
    for name in ("results.csv", "events.jsonl", "figure.png", "report.md", "run.json"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cells = sorted(os.listdir(run_dir / "cells"))
    assert len(cells) == 3
    for cell in cells:
        assert os.listdir(run_dir / "cells" / cell) == ["model.keras"], "epoch checkpoints must be cleaned up"
    # a cell's checkpoint is plain Keras: no compile config naming this project's schedule,
    # and it loads in a fresh interpreter outside the repo with nothing of spatialmix imported
    import zipfile
    checkpoint = run_dir / "cells" / cells[0] / "model.keras"
    with zipfile.ZipFile(checkpoint) as z:
        assert not json.loads(z.read("config.json")).get("compile_config")
    load = ("import sys, keras; m = keras.models.load_model(sys.argv[1], safe_mode=True); "
            "print(m.count_params(), any(k.split('.')[0] in ('zoo', 'recipes') for k in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", load, str(checkpoint)], capture_output=True, text=True,
                          timeout=300, cwd="/", env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[1] == "False"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["backend"] and meta["invocations"][0]["versions"]["keras"] and "git_commit" in meta["invocations"][0]
    # the engine trains on the measured-fastest CPU backend unless told otherwise, with its fast ops
    from recipes.core.choices import default_backend
    from recipes.core.runtime import fast_ops_wanted
    assert meta["backend"] == default_backend()
    runtime = meta["invocations"][0]["runtime"]
    assert runtime["backend"] == meta["backend"] and (runtime.get("fast_ops") or not fast_ops_wanted()), runtime
    report = (run_dir / "report.md").read_text()
    assert any(v in report for v in ("holds", "does not hold", "inconclusive"))
    kinds = [e["event"] for e in read_events(run_dir)]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("cell_start") == kinds.count("cell_end") == 3 and kinds.count("epoch_end") == 6

    before = (run_dir / "results.csv").read_bytes()
    mtimes = {c: os.path.getmtime(run_dir / "cells" / c / "model.keras") for c in cells}
    again = spatialmix("run", "convmixer-mixing", "--scale", "smoke", "--runs-dir", str(runs_dir))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" in again.stdout
    assert (run_dir / "results.csv").read_bytes() == before
    assert {c: os.path.getmtime(run_dir / "cells" / c / "model.keras") for c in cells} == mtimes
    second = read_events(run_dir)[len(kinds):]
    assert [e["event"] for e in second] == ["run_start", "run_end"]

    results = spatialmix("results", "convmixer-mixing", "--runs-dir", str(runs_dir))
    assert results.returncode == 0 and "3/3 cells" in results.stdout and "chans" in results.stdout


def test_sigint_cancels_a_run_even_when_started_with_sigint_ignored(tmp_path):
    """`spatialmix run ... &` from a script starts with SIGINT ignored (POSIX shells do that to
    background jobs); SIGINT is still how the TUI and Ctrl-C cancel, so the run must stop and say so."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [SPATIALMIX, "run", "convmixer-mixing", "--runs-dir", str(tmp_path), "--quiet"]  # cpu: epochs of seconds
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    events_path = tmp_path / "convmixer-mixing" / "cpu-textures-seed0" / "events.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if events_path.exists() and '"epoch_end"' in events_path.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before its first epoch: {proc.stderr.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # leave no run behind
        raise AssertionError("SIGINT did not stop the run within 120 s") from None
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted; run the same command again to resume" in stderr
    last = [json.loads(line) for line in events_path.read_text().splitlines()][-1]
    assert last["event"] == "run_end" and last["status"] == "interrupted"


def test_kill_9_mid_cell_then_resume(tmp_path):
    """A run killed (-9) in the middle of its second cell: the rerun resumes that cell from its epoch
    checkpoint, trains the finished first cell no more, and writes each cell's row once."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [SPATIALMIX, "run", "convmixer-mixing", "--scale", "smoke", "--runs-dir", str(tmp_path), "--quiet"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = tmp_path / "convmixer-mixing" / "smoke-digits-seed0"
    events_path = run_dir / "events.jsonl"
    victim = None
    deadline = time.time() + 300
    while victim is None and time.time() < deadline and proc.poll() is None:
        if events_path.exists():
            # the second cell has finished its first epoch (and checkpointed it), not the cell
            events = [json.loads(line) for line in events_path.read_text().splitlines()]
            ends = [e for e in events if e["event"] == "cell_end"]
            mid = [e for e in events if e["event"] == "epoch_end" and e["epoch"] == 1]
            if len(ends) == 1 and len(mid) == 2:
                os.kill(proc.pid, signal.SIGKILL)
                victim = mid[-1]["cell"]
        time.sleep(0.02)
    proc.wait()
    assert victim is not None, f"never saw cell 2 mid-way: {proc.stderr.read()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    n_before = len(events_path.read_text().splitlines())

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    with open(run_dir / "results.csv") as f:
        import csv

        rows = list(csv.DictReader(f))
    assert sorted(r["cell"] for r in rows) == sorted({r["cell"] for r in rows}), "a row was duplicated"
    assert len(rows) == 3
    resumed = [e for e in read_events(run_dir)[n_before:] if e["event"] == "cell_start"]
    assert resumed[0]["cell"] == victim and resumed[0]["resumed_from_epoch"] >= 1
    assert len(resumed) == 2, "the finished first cell must not run again"
    row = next(r for r in rows if r["cell"] == victim)
    assert int(row["resumed_from_epoch"]) >= 1
    assert not [f for f in os.listdir(run_dir) if f.startswith(".tmp-")]
