import os
import subprocess
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    yield


SLOW_TIER_TIMEOUT = 3600   # seconds; the default tier's per-test timeout is pyproject's `timeout`


def pytest_collection_modifyitems(config, items):
    """A slow-tier test (cpu-scale runs, paper-size models, whole matrices) may take many minutes:
    it gets SLOW_TIER_TIMEOUT unless it has its own timeout mark."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIER_TIMEOUT))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real `spatialmix run convmixer-mixing --scale smoke` (the installed console script), made
    once per session for the tests that read a finished run folder. A test that changes the folder
    works on a copy (shutil.copytree(smoke_run.runs_dir, ...)). Fields: runs_dir, run_dir, proc."""
    runs_dir = tmp_path_factory.mktemp("smoke-run") / "runs"
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "spatialmix"), "run", "convmixer-mixing",
                           "--scale", "smoke", "--runs-dir", str(runs_dir)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return types.SimpleNamespace(runs_dir=runs_dir, run_dir=runs_dir / "convmixer-mixing" / "smoke-digits-seed0",
                                 proc=proc)
