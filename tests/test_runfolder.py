"""The run folder (recipes.core.runfolder): its writers under kill -9 never leave a partial line or
row, its readers take a torn or damaged log, and no other module knows its file names."""

import csv
import json

import pytest
import os
import signal
import subprocess
import sys
import time

from recipes.core import runfolder
from recipes.core.runfolder import RunFolder

EVENT_WRITER = """
import sys
from recipes.core.runfolder import EventLog
log = EventLog(sys.argv[1])
i = 0
while True:
    log.emit("epoch_end", cell="c", epoch=i, payload="x" * (i % 3000), metrics={"loss": 1.0 / (i + 1)})
    i += 1
"""

ROW_WRITER = """
import sys
import os
from recipes.core.runfolder import RunFolder
folder = RunFolder(os.path.dirname(sys.argv[1]))
i = 0
while True:
    folder.append_row({"cell": f"cell{i}", "mode": "chans", "depth": i % 7, "note": "y" * (i % 500),
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


def test_event_log_has_only_whole_lines_after_kill_9(tmp_path):
    path = tmp_path / "events.jsonl"
    for attempt in range(3):
        proc = start(EVENT_WRITER, path)
        wait_for(path, lambda: os.path.getsize(path) > 50_000 * (attempt + 1))
        # read while it writes: the reader never parses a partial line
        offset, seen = 0, 0
        for _ in range(20):
            events, offset, bad = runfolder.read_events(path, offset)
            assert bad == 0
            seen += len(events)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert seen > 0
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the log ends in a partial line"
    lines = raw.split(b"\n")[:-1]
    epochs = [json.loads(line)["epoch"] for line in lines]  # every line is whole JSON
    assert len(epochs) > 100


def test_results_table_is_always_whole_under_concurrent_reads_and_kill_9(tmp_path):
    path = tmp_path / "results.csv"
    proc = start(ROW_WRITER, path)
    wait_for(path, lambda: len(runfolder.read_results(path)) >= 5)
    previous = 0
    for _ in range(100):
        rows = runfolder.read_results(path)
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


def test_append_row_unions_columns_and_never_adds_a_cell_twice(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.append_row({"cell": "a", "x": 1})
    assert folder.append_row({"cell": "b", "y": 2.5})
    assert not folder.append_row({"cell": "a", "x": 3})
    rows = folder.rows()
    assert rows == [{"cell": "a", "x": "1", "y": ""}, {"cell": "b", "x": "", "y": "2.5"}]
    assert oct(os.stat(folder.results_path).st_mode & 0o777) == "0o644"


def test_append_result_writes_numpy_scalars_as_numbers(tmp_path):
    # np.float64 is a float subclass whose repr (NumPy 2) is 'np.float64(...)'; a results
    # column must stay a number that float() reads back
    import numpy as np

    folder = RunFolder(tmp_path)
    folder.append_row({"cell": "a", "psnr": np.float64(16.38581234), "acc": np.float32(0.5), "n": np.int64(3)})
    row = folder.rows()[0]
    assert row == {"cell": "a", "psnr": "16.385812", "acc": "0.5", "n": "3"}
    assert float(row["psnr"]) == 16.385812


def test_a_torn_last_line_waits_and_a_damaged_line_is_counted(tmp_path):
    folder = RunFolder(tmp_path)
    log = folder.event_log()
    log.emit("run_start", recipe="r", cells_total=1, cells_done=0)
    with open(folder.events_path, "ab") as f:
        f.write(b"this is not json\n")
        f.write(b'{"event": "cell_start", "cell": "a"')     # a writer mid-line
    events, offset, bad = folder.events()
    assert [e["event"] for e in events] == ["run_start"] and bad == 1
    with open(folder.events_path, "ab") as f:
        f.write(b', "index": 1}\n')
    more, offset2, bad2 = folder.events(offset)
    assert [e.get("cell") for e in more] == ["a"] and bad2 == 0 and offset2 > offset
    assert folder.status() == "running or killed"
    log.emit("run_end", status="interrupted", cells_done=0, cells_total=1)
    assert folder.status() == "interrupted"


def test_a_second_holder_of_the_lock_is_refused_in_one_line(tmp_path):
    from zoo.errors import SpatialmixError

    folder = RunFolder(tmp_path)
    code = ("import sys, time; from recipes.core.runfolder import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpatialmixError) as error:
            with folder.lock():
                pass
        assert f"pid {holder.pid}" in str(error.value) and "\n" not in str(error.value)
    finally:
        holder.kill()
        holder.wait()
    with folder.lock():     # free again once the holder is gone
        pass


def test_only_the_run_folder_module_names_the_files_of_a_run_folder():
    """Every path into a run folder is built by recipes.core.runfolder; no other module of the
    package spells out the names of its files."""
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = re.compile(r"""["'](run\.json|events\.jsonl|results\.csv|verdict\.json|report\.md|figure\.png|\.lock)["']""")
    offenders = []
    for package in ("recipes", "tui", "zoo"):
        for here, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                path = os.path.join(here, name)
                if not name.endswith(".py") or path.endswith(os.path.join("core", "runfolder.py")):
                    continue
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        code = line.split("#", 1)[0]
                        if names.search(code) and not code.lstrip().startswith(("\"", "'")):
                            offenders.append(f"{os.path.relpath(path, root)}:{number}: {line.strip()}")
    assert not offenders, "run-folder file names outside recipes/core/runfolder.py:\n" + "\n".join(offenders)
