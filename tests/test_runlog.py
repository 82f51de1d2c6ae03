"""The run folder's writers under interruption: no partial line or row is ever visible."""

import csv
import json

import pytest
import os
import signal
import subprocess
import sys
import time

from recipes.core import runlog

EVENT_WRITER = """
import sys
from recipes.core.runlog import EventLog
log = EventLog(sys.argv[1])
i = 0
while True:
    log.emit("epoch_end", cell="c", epoch=i, payload="x" * (i % 3000), metrics={"loss": 1.0 / (i + 1)})
    i += 1
"""

ROW_WRITER = """
import sys
from recipes.core.runlog import append_result
i = 0
while True:
    append_result(sys.argv[1], {"cell": f"cell{i}", "mode": "chans", "depth": i % 7, "note": "y" * (i % 500),
                                "test_accuracy": 0.5 + i * 1e-4})
    i += 1
"""


def start(code, path):
    return subprocess.Popen([sys.executable, "-c", code, str(path)], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def wait_for(path, predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never got there")


@pytest.mark.slow
def test_event_log_has_only_whole_lines_after_kill_9(tmp_path):
    path = tmp_path / "events.jsonl"
    for attempt in range(3):
        proc = start(EVENT_WRITER, path)
        wait_for(path, lambda: os.path.getsize(path) > 200_000 * (attempt + 1))
        # read while it writes: the reader never parses a partial line
        offset, seen = 0, 0
        for _ in range(20):
            events, offset = runlog.read_events(path, offset)
            seen += len(events)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert seen > 0
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the log ends in a partial line"
    lines = raw.split(b"\n")[:-1]
    epochs = [json.loads(line)["epoch"] for line in lines]  # every line is whole JSON
    assert len(epochs) > 100


@pytest.mark.slow
def test_results_table_is_always_whole_under_concurrent_reads_and_kill_9(tmp_path):
    path = tmp_path / "results.csv"
    proc = start(ROW_WRITER, path)
    wait_for(path, lambda: len(runlog.read_results(path)) >= 5)
    previous = 0
    for _ in range(200):
        rows = runlog.read_results(path)
        assert len(rows) >= previous, "a row disappeared"
        previous = len(rows)
        for row in rows:
            assert row["test_accuracy"] and row["cell"].startswith("cell"), row
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == [f"cell{i}" for i in range(len(rows))], "rows lost or duplicated"
    assert all(r["test_accuracy"] for r in rows)


def test_append_result_unions_columns(tmp_path):
    path = tmp_path / "results.csv"
    runlog.append_result(path, {"cell": "a", "x": 1})
    runlog.append_result(path, {"cell": "b", "y": 2.5})
    rows = runlog.read_results(path)
    assert rows == [{"cell": "a", "x": "1", "y": ""}, {"cell": "b", "x": "", "y": "2.5"}]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_append_result_writes_numpy_scalars_as_numbers(tmp_path):
    # np.float64 is a float subclass whose repr (NumPy 2) is 'np.float64(...)'; a results
    # column must stay a number that float() reads back
    import numpy as np

    path = tmp_path / "results.csv"
    runlog.append_result(path, {"cell": "a", "psnr": np.float64(16.38581234), "acc": np.float32(0.5), "n": np.int64(3)})
    row = runlog.read_results(path)[0]
    assert row == {"cell": "a", "psnr": "16.385812", "acc": "0.5", "n": "3"}
    assert float(row["psnr"]) == 16.385812
