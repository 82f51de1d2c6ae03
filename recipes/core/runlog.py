"""The run folder's files that must never be seen half-written.

- `events.jsonl`: one JSON object per line, appended with a single `write` on an
  O_APPEND descriptor and flushed to disk, so a reader (the TUI, another terminal)
  never sees a partial line, even after `kill -9`.
- `results.csv`: rewritten whole into a temp file and swapped in with `os.replace`,
  so every reader sees either the old table or the new one.

Event schema (every event has `event` and `time`, seconds since the epoch):
    run_start  recipe, scale, dataset, backend, seed, cells_total, cells_done, run_dir, argv
    cell_start cell (id), index (1-based), cells_total, config, epochs, resumed_from_epoch
    epoch_end  cell, epoch (1-based), epochs, metrics {name: value}, samples_per_s, seconds
    cell_end   cell, index, cells_total, metrics, wall_s
    run_end    status ("finished" | "interrupted" | "failed"), cells_done, cells_total, wall_s
    error      message, cell (or null), kind ("user" | "internal")
"""

import csv
import io
import json
import os
import platform
import sys
import tempfile
import time

EVENT_TYPES = ("run_start", "cell_start", "epoch_end", "cell_end", "run_end", "error")


def atomic_write_text(path, text):
    """Write `text` to `path` so that readers see the old file or the new one, nothing between."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for every reader
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


class EventLog:
    """Append-only JSON-lines log."""

    def __init__(self, path):
        self.path = path

    def emit(self, event, **fields):
        assert event in EVENT_TYPES, event
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = (json.dumps(record, default=_json_default) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write on O_APPEND: a line lands whole or not at all
            os.fsync(fd)
        finally:
            os.close(fd)
        return record


def _json_default(value):
    """What json.dumps does with a value it does not know: numbers (NumPy scalars, 0-d
    arrays, tensors) become floats, anything else its str."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def jsonable(value):
    """A copy of `value` that JSON can hold (see `_json_default`), as the event log writes it."""
    return json.loads(json.dumps(value, default=_json_default))


def versions():
    """Python's version and those of the frameworks this process has imported."""
    found = {"python": platform.python_version()}
    for name in ("keras", "tensorflow", "jax", "torch", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def read_events(path, start=0):
    """Events from byte offset `start`; returns (events, next_offset). A trailing
    fragment without newline (a writer mid-write on another filesystem) is left for later."""
    if not os.path.exists(path):
        return [], start
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return events, start + end


def read_results(path):
    """The results table as a list of dicts ([] if there is none yet)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def append_result(path, row):
    """Add one row to the results table atomically; the columns are the union of all rows."""
    rows = read_results(path) + [{k: _cell_text(v) for k, v in row.items()}]
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _cell_text(value):
    if isinstance(value, float):  # NumPy's float64 too: float() first, or its repr is 'np.float64(...)'
        return repr(round(float(value), 6))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)
