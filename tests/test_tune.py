"""`spatialmix tune`: trials as run-folder cells, the best model, resume after kill -9, and
KerasTuner's chief + 2 workers on loopback (its user errors are in tests/test_bad_inputs.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from recipes.core import runfolder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = ["tune", "convmixer", "--mode", "chans", "--scale", "smoke", "--max-trials", "2", "--epochs", "1",
         "--backend", "tensorflow", "--quiet"]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **extra}


def _spatialmix(args, cwd, env=None, timeout=400):
    return subprocess.run([sys.executable, "-m", "recipes.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env or _env(), timeout=timeout)


def _run_dir(runs):
    return os.path.join(runs, "tune-convmixer", "smoke-digits-chans-random")


def _events(run_dir):
    return runfolder.read_events(os.path.join(run_dir, "events.jsonl"))[0]


def test_one_trial_search_end_to_end(tmp_path):
    """A real KerasTuner search of one trial (smoke data, one epoch): the trial is a run-folder cell
    with its configuration and metrics, and the best model is a plain Keras file of that trial."""
    import keras

    runs = str(tmp_path / "runs")
    one = list(SMOKE)
    one[one.index("--max-trials") + 1] = "1"
    out = _spatialmix([*one, "--runs-dir", runs], REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = _run_dir(runs)
    (row,) = runfolder.read_results(os.path.join(run_dir, "results.csv"))
    assert row["cell"] == "trial=0" and row["status"] == "completed" and row["mode"] == "chans"
    assert all(row[k] for k in ("width", "depth", "kernel_size", "patch_size", "params_trainable"))
    assert 0 < float(row["test_accuracy"]) <= 1 and 0 < float(row["val_accuracy"]) <= 1
    kinds = [e["event"] for e in _events(run_dir)]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and kinds.count("epoch_end") == 1
    best = json.load(open(os.path.join(run_dir, "best.json")))
    assert best["trial"] == "0" and best["config"]["width"] == int(row["width"])
    model = keras.models.load_model(os.path.join(run_dir, "best_model.keras"), safe_mode=True)
    assert model.count_params() == best["params_total"] == int(row["params_total"])
    assert f"best configuration (convmixer, mode chans): width={row['width']}" in out.stdout


@pytest.mark.slow
def test_two_trial_search_writes_rows_and_best_model_and_resumes_after_kill(tmp_path):
    """A search killed (-9) after its first trial resumes from KerasTuner's project dir:
    the finished trial is not run again, and the search ends with 2 rows and a best model."""
    runs = str(tmp_path / "runs")
    run_dir = _run_dir(runs)
    proc = subprocess.Popen([sys.executable, "-m", "recipes.cli", *SMOKE, "--runs-dir", runs], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if any(e["event"] == "cell_start" and e["cell"] == "trial=1" for e in _events(run_dir)):
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert [r["cell"] for r in runfolder.read_results(os.path.join(run_dir, "results.csv"))] == ["trial=0"]

    out = _spatialmix([*SMOKE, "--runs-dir", runs], REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = runfolder.read_results(os.path.join(run_dir, "results.csv"))
    assert [r["cell"] for r in rows] == ["trial=0", "trial=1"]
    assert all(r["status"] == "completed" and r["mode"] == "chans" and float(r["test_accuracy"]) > 0 for r in rows)
    assert all(r[k] for r in rows for k in ("width", "depth", "kernel_size", "patch_size", "params_trainable"))
    starts = [e["cell"] for e in _events(run_dir) if e["event"] == "cell_start"]
    assert starts.count("trial=0") == 1, "the finished trial ran again"
    kinds = {e["event"] for e in _events(run_dir)}
    assert {"run_start", "cell_start", "epoch_end", "cell_end", "run_end"} <= kinds
    assert "best configuration (convmixer, mode chans): width=" in out.stdout
    best = json.load(open(os.path.join(run_dir, "best.json")))
    assert best["trial"] in ("0", "1") and os.path.exists(os.path.join(run_dir, "best_model.keras"))
    check = subprocess.run([sys.executable, "-c", "import keras, sys; m = keras.models.load_model(sys.argv[1], "
                            "safe_mode=True); print(m.count_params())", os.path.join(run_dir, "best_model.keras")],
                           capture_output=True, text=True, cwd=str(tmp_path), env=_env(KERAS_BACKEND="jax"), timeout=120)
    assert check.returncode == 0 and int(check.stdout.split()[-1]) == best["params_total"], check.stderr[-1000:]
    shown = _spatialmix(["results", "--runs-dir", runs], REPO, timeout=120)
    assert shown.returncode == 0 and "tune-convmixer" in shown.stdout and "best: trial" in shown.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_on_loopback_finish_a_search(tmp_path):
    """Each worker runs a trial. tuner0 is paused (SIGSTOP, as Ctrl-Z does) while it holds trial 0,
    so the second trial can only go to tuner1; then tuner0 goes on and both finish."""
    runs = str(tmp_path / "runs")
    port = str(_free_port())
    args = [*SMOKE, "--runs-dir", runs]
    procs = {}

    def start(tuner_id):
        env = _env(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
        procs[tuner_id] = subprocess.Popen([sys.executable, "-m", "recipes.cli", *args], cwd=REPO, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           start_new_session=True)

    def wait_for_trial(tuner_id):
        deadline = time.time() + 300
        while time.time() < deadline and procs[tuner_id].poll() is None:
            if any(e["event"] == "cell_start" and e.get("tuner_id") == tuner_id for e in _events(_run_dir(runs))):
                return
            time.sleep(0.5)
        raise AssertionError(f"{tuner_id} started no trial: {procs[tuner_id].communicate()[1][-2000:]}")

    try:
        start("chief")
        time.sleep(2)
        start("tuner0")
        wait_for_trial("tuner0")
        os.killpg(procs["tuner0"].pid, signal.SIGSTOP)
        try:
            start("tuner1")
            wait_for_trial("tuner1")
        finally:
            os.killpg(procs["tuner0"].pid, signal.SIGCONT)
        outputs = {}
        for tuner_id in ("tuner0", "tuner1", "chief"):
            outputs[tuner_id] = procs[tuner_id].communicate(timeout=480)
            assert procs[tuner_id].returncode == 0, f"{tuner_id}: {outputs[tuner_id][1][-2000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    rows = runfolder.read_results(os.path.join(_run_dir(runs), "results.csv"))
    assert sorted(r["cell"] for r in rows) == ["trial=0", "trial=1"]
    assert {r["cell"]: r["tuner_id"] for r in rows} == {"trial=0": "tuner0", "trial=1": "tuner1"}
    assert all(r["status"] == "completed" for r in rows)
    assert "best configuration" in outputs["chief"][0]
    assert os.path.exists(os.path.join(_run_dir(runs), "best_model.keras"))
