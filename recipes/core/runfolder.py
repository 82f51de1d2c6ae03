"""The run folder: the one module that knows its layout and reads or writes its files.

A run of recipe R at scale S on data set D with seed offset N lives in

    <runs-dir>/<R>/<S>-<D>-seed<N>/
        run.json        what ran: recipe, scale, dataset, backend, and one record per
                        invocation (argv, versions, git commit, host, runtime settings)
        events.jsonl    the event log, appended line by line (schema below)
        results.csv     one row per finished cell, the whole table swapped in atomically
        verdict.json    the claim's verdict, frozen when the run finished (see `freeze_verdict`)
        report.md       the measured claim beside the paper's
        figure.png      drawn from results.csv
        cells/<cell>/   the cell's epoch checkpoint while it trains, then its plain model.keras;
                        under `--executor ray` also the cell's own event log (events.jsonl,
                        written by the task that trains it) and its lock (.lock, held by
                        that task: two copies of one cell never train at once)
        .lock           holds the pid of the process that runs the folder (an flock)

A tune search (`spatialmix tune`) writes the same files under `<runs-dir>/tune-<family>/`,
plus best.json and best_model.keras.

Nothing here is ever half-written: `events.jsonl` gets each line with one `write` on an
O_APPEND descriptor, flushed to disk, so a reader never sees a partial line, even after
`kill -9`; every other file is written to a temp file and swapped in with `os.replace`,
so readers see the old file or the new one. A temp file left by a kill is removed when
the folder is next run (`remove_stale_temp_files`).

Event schema (every event has `event` and `time`, seconds since the epoch):
    run_start  recipe, scale, dataset, backend, seed, cells_total, cells_done, run_dir, argv
    cell_start cell (id), index (1-based), cells_total, config, epochs, resumed_from_epoch
    epoch_end  cell, epoch (1-based), epochs, metrics {name: value}, samples_per_s, seconds
    cell_end   cell, index, cells_total, metrics, wall_s
    run_end    status ("finished" | "interrupted" | "failed"), cells_done, cells_total, wall_s
    error      message, cell (or null), kind ("user" | "internal")

One writer per file. Run locally, the run's process writes every event to events.jsonl.
Under `--executor ray` the driver (the process that holds the run lock) writes run_start,
cell_end, run_end and error there, and the task that trains a cell writes that cell's
cell_start and epoch_end to the cell's own log; both of those and cell_end then also carry
where the cell ran: host, node (Ray's node id), gpus (the GPU ids Ray gave it), pid.
Readers merge the logs by time (`RunFolder.follow()`, `RunFolder.all_events()`).
"""

import contextlib
import csv
import dataclasses
import fcntl
import glob
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing

from zoo.errors import SpatialmixError, check

RUN_JSON, EVENTS, RESULTS, VERDICT = "run.json", "events.jsonl", "results.csv", "verdict.json"
REPORT, FIGURE, LOCK, CELLS = "report.md", "figure.png", ".lock", "cells"
CELL_EVENTS, CELL_LOCK = EVENTS, LOCK                       # a Ray cell's own log and lock, in its cell dir
BEST_JSON, BEST_MODEL = "best.json", "best_model.keras"   # a tune search's best trial
MODEL = "model.keras"                                      # a finished cell's plain checkpoint
EVENT_TYPES = ("run_start", "cell_start", "epoch_end", "cell_end", "run_end", "error")
STATUSES = ("finished", "interrupted", "failed")


# ---------------------------------------------------------------------------- where folders are

def run_dir_for(runs_dir, recipe_id, scale, dataset, seed):
    """`<runs-dir>/<recipe>/<scale>-<dataset>-seed<N>` (a '/' in a TFDS name becomes '_')."""
    return os.path.join(runs_dir, recipe_id, f"{scale}-{dataset.replace('/', '_')}-seed{seed}")


def tune_dir_for(runs_dir, family, scale, dataset, mode, tuner):
    return os.path.join(runs_dir, f"tune-{family}", f"{scale}-{dataset}-{mode}-{tuner}")


def cell_dir_name(cell_id):
    """A cell id as a folder name (ids are 'axis=value,...,seed=N')."""
    return "".join(ch if ch.isalnum() or ch in "=-_.," else "_" for ch in cell_id)


def check_runs_dir(runs_dir):
    """A runs dir to read: it must be a directory (a one-line error otherwise)."""
    check(os.path.exists(runs_dir), f"runs dir {runs_dir!r} does not exist; pass --runs-dir DIR "
                                    "(the folder `spatialmix run` wrote into, ./runs by default)")
    check(os.path.isdir(runs_dir), f"runs dir {runs_dir!r} is not a directory; pass --runs-dir DIR")


def check_writable(runs_dir):
    """Fail early (and create nothing) if the runs dir cannot be created or written."""
    probe = os.path.abspath(runs_dir)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    check(os.path.isdir(probe), f"runs dir {runs_dir!r} cannot be created: {probe} is not a directory; "
                                "pass --runs-dir DIR")
    try:  # os.access says yes to root even on a read-only filesystem: really try
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".spatialmix-probe-"))
    except OSError as e:
        raise SpatialmixError(f"runs dir {runs_dir!r} is not writable ({probe}: {e.strerror}); "
                              "pass --runs-dir DIR") from None


def find_run_dirs(runs_dir):
    """Every `<runs-dir>/<recipe>/<run>/` folder, absolute and sorted (empty ones included)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(runs_dir), "*", "*")):
        if os.path.isdir(path) and not os.path.basename(path).startswith("."):
            found.append(os.path.abspath(path))
    return sorted(found)


def recipe_folders(runs_dir, recipe_id):
    """The run folders of `recipe_id` that have a readable run.json: [(RunFolder, meta)]."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(runs_dir), glob.escape(recipe_id), "*", RUN_JSON)):
        folder = RunFolder(os.path.dirname(path))
        meta = folder.meta()
        if meta is not None:
            found.append((folder, meta))
    return found


# ---------------------------------------------------------------------------- writing safely

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
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def temp_path(path):
    """Where to write `path` before `os.replace` (a name `remove_stale_temp_files` clears)."""
    return os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))


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


def read_json(path):
    """A JSON file's content, or None if it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- the event log

class EventLog:
    """Append-only JSON-lines log: one `write` per line on an O_APPEND descriptor, fsynced."""

    def __init__(self, path, listener=None):
        self.path = path
        self.listener = listener      # called with every record (the CLI's progress lines)

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
        if self.listener:
            self.listener(record)
        return record


class Events(typing.NamedTuple):
    events: list        # the parsed events, in file order
    offset: int         # where to read on from next time
    bad_lines: int      # lines that were not a JSON object (a log damaged by hand, a full disk)


def read_events(path, start=0):
    """The events from byte offset `start`. A trailing fragment without its newline (a writer
    mid-write, seen over a network filesystem) is left for the next read; a line that is not
    a JSON object is skipped and counted."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return Events([], start, 0)
    end = data.rfind(b"\n") + 1
    events, bad = [], 0
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            events.append(event)
        else:
            bad += 1
    return Events(events, start + end, bad)


def last_status(events):
    """The run's state from its events: the last run_end's status (finished / interrupted /
    failed), "running or killed" when the last run_start has no run_end yet (a live run, or
    one stopped by kill -9), "not started" when there is no run_start."""
    state = "not started"
    for e in events:
        if e.get("event") == "run_start":
            state = "running or killed"
        elif e.get("event") == "run_end":
            state = e.get("status") or "failed"
    return state


# ---------------------------------------------------------------------------- the results table

def read_results(path):
    """A results table as a list of dicts ([] if there is none yet)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _write_results(path, rows):
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


# ---------------------------------------------------------------------------- run.json

def versions():
    """Python's version and those of the frameworks this process has imported."""
    found = {"python": platform.python_version()}
    for name in ("keras", "tensorflow", "jax", "torch", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def git_commit():
    """The commit of the code that runs ('+dirty' with uncommitted changes), or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def invocation(argv, runtime=None, **extra):
    """One invocation's record in run.json."""
    return {"argv": argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
            "versions": versions(), "git_commit": git_commit(), "host": platform.node(), "runtime": runtime,
            **extra}


# ---------------------------------------------------------------------------- one folder

class RunLock:
    """One process per run folder: a second one fails with a one-line error naming the holder."""

    def __init__(self, path):
        self.path = path

    def _holder_text(self):
        return str(os.getpid())

    def _refused(self, holder):
        return SpatialmixError(f"run folder {os.path.dirname(self.path)} is in use by another run "
                               f"(pid {holder}); wait for it or pass another --runs-dir")

    def _try(self):
        """Take the flock without waiting; False if another process holds it."""
        self.f = open(self.path, "a+")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            self.f.seek(0)
            self.holder = self.f.read().strip() or "?"
            self.f.close()
            return False

    def __enter__(self):
        if not self._try():
            raise self._refused(self.holder) from None
        self.f.seek(0)
        self.f.truncate()
        self.f.write(self._holder_text())
        self.f.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


class CellBusy(SpatialmixError):
    """Another process trains this cell (its cell lock is held)."""


class CellLock(RunLock):
    """One trainer per cell: a task takes it before it touches the cell's checkpoints.

    Non-blocking, tried again every `poll_s` for up to `wait_s` seconds: a task that Ray
    retried may start while the killed copy's process is still being reaped (its flock goes
    with it). Past that, `CellBusy` names the holder (pid and host)."""

    def __init__(self, path, cell_id, wait_s=0.0, poll_s=0.5):
        super().__init__(path)
        self.cell_id, self.wait_s, self.poll_s = cell_id, wait_s, poll_s

    def _holder_text(self):
        return f"{os.getpid()} {platform.node()}"

    def _refused(self, holder):
        pid, _, host = holder.partition(" ")
        return CellBusy(f"cell {self.cell_id} is being trained by another process (pid {pid}"
                        f"{' on ' + host if host else ''}); wait for it, or stop that process")

    def __enter__(self):
        deadline = time.monotonic() + self.wait_s
        while not self._try():
            if time.monotonic() >= deadline:
                raise self._refused(self.holder) from None
            time.sleep(self.poll_s)
        self.f.seek(0)
        self.f.truncate()
        self.f.write(self._holder_text())
        self.f.flush()
        return self


class RunFolder:
    """One run folder: its paths, and every read and write of its files."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def __repr__(self):
        return f"RunFolder({self.path!r})"

    def file(self, name):
        return os.path.join(self.path, name)

    meta_path = property(lambda self: self.file(RUN_JSON))
    events_path = property(lambda self: self.file(EVENTS))
    results_path = property(lambda self: self.file(RESULTS))
    verdict_path = property(lambda self: self.file(VERDICT))
    report_path = property(lambda self: self.file(REPORT))
    figure_path = property(lambda self: self.file(FIGURE))
    lock_path = property(lambda self: self.file(LOCK))

    def cell_dir(self, cell_id, create=False):
        path = os.path.join(self.path, CELLS, cell_dir_name(cell_id))
        if create:
            os.makedirs(path, exist_ok=True)
        return path

    def cell_model(self, cell_id):
        """The finished cell's plain checkpoint."""
        return os.path.join(self.cell_dir(cell_id), MODEL)

    def cell_lock(self, cell_id, wait_s=0.0):
        """The cell's own lock (`CellLock`), for the task that trains it."""
        return CellLock(os.path.join(self.cell_dir(cell_id, create=True), CELL_LOCK), cell_id, wait_s)

    def cell_event_log(self, cell_id, listener=None):
        """The cell's own event log: its trainer's cell_start and epoch_end under Ray."""
        return EventLog(os.path.join(self.cell_dir(cell_id, create=True), CELL_EVENTS), listener)

    def cell_events(self, cell_id, start=0):
        return read_events(os.path.join(self.cell_dir(cell_id), CELL_EVENTS), start)

    def create(self):
        os.makedirs(os.path.join(self.path, CELLS), exist_ok=True)
        return self

    def remove_stale_temp_files(self):
        """A kill -9 during an atomic write can leave its temp file; it was never visible as a result."""
        for pattern in (".tmp-*", f"{CELLS}/*/.tmp-*"):
            for path in glob.glob(os.path.join(glob.escape(self.path), pattern)):
                os.unlink(path)

    # -- run.json
    def meta(self):
        """run.json's content, or None (no folder, or not written yet)."""
        return read_json(self.meta_path)

    def record_invocation(self, fields, record):
        """Update run.json with `fields` and append one invocation `record`; returns the meta."""
        meta = self.meta() or {}
        meta.update(fields)
        meta.setdefault("invocations", []).append(record)
        atomic_write_json(self.meta_path, meta)
        return meta

    def check_backend(self, backend, what="run folder"):
        """A folder made under one backend resumes only under it (its checkpoints hold its optimizer state)."""
        meta = self.meta()
        if meta and meta.get("backend") and meta["backend"] != backend:
            raise SpatialmixError(f"{what} {self.path} was made with backend {meta['backend']}; rerun with "
                                  f"--backend {meta['backend']} to resume it, or pass another --runs-dir")

    # -- the lock
    def lock(self):
        return RunLock(self.lock_path)

    def lock_holder(self):
        """The pid of the live spatialmix process holding this folder's lock, or None. The pid
        file stays after the run, so the pid must also be alive and still a spatialmix process."""
        try:
            with open(self.lock_path, encoding="utf-8") as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and pid_alive(pid) else None

    # -- events
    def event_log(self, listener=None):
        return EventLog(self.events_path, listener)

    def events(self, start=0):
        return read_events(self.events_path, start)

    def status(self):
        return last_status(self.events().events)

    def follow(self):
        """An `EventFollower`: the run's log and every cell log, read on from where it stopped."""
        return EventFollower(self)

    def all_events(self):
        """Every event of the run's log and of the cells' logs, merged by time."""
        return self.follow().read().events

    def cell_progress(self):
        """{cell id: CellProgress} of every cell the latest invocation started, from the merged logs."""
        return cell_progress(self.all_events())

    # -- the shared filesystem check (Ray)
    def invocation_token(self):
        """What identifies the newest invocation recorded in run.json (its host, pid and start),
        or None: a node that reads the same token sees the same folder."""
        invocations = (self.meta() or {}).get("invocations") or []
        if not invocations:
            return None
        last = invocations[-1]
        return f"{last.get('host')}:{last.get('pid')}:{last.get('started')}"

    def check_visible(self, token, where):
        """Fail in one line unless this process sees the run folder its driver wrote (`token`:
        the driver's `invocation_token()`). `where` names the node (for the message)."""
        found = self.invocation_token()
        if found == token:
            return
        seen = ("no run folder at that path" if not os.path.isdir(self.path) else
                "no run.json there" if found is None else "another run's run.json there")
        raise SpatialmixError(f"{where} cannot see the run folder {self.path} ({seen}): put --runs-dir on a "
                              "filesystem that every node mounts at the same path (NFS, Lustre, ...)")

    # -- results
    def rows(self):
        return read_results(self.results_path)

    @contextlib.contextmanager
    def _results_lock(self):
        """Several processes append to one table (tune workers): one at a time."""
        with open(self.file(".results.lock"), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def append_row(self, row):
        """Add one row atomically; the columns are the union of all rows. A row whose `cell`
        is already in the table is not added again (returns False)."""
        with self._results_lock():
            rows = self.rows()
            if row.get("cell") is not None and any(r.get("cell") == str(row["cell"]) for r in rows):
                return False
            _write_results(self.results_path, rows + [{k: _cell_text(v) for k, v in row.items()}])
            return True

    # -- the frozen verdict, the report and the figure
    def write_verdict(self, record):
        atomic_write_json(self.verdict_path, record)

    def frozen_verdict(self):
        """verdict.json's content, or None (the run has not finished, or predates frozen verdicts)."""
        return read_json(self.verdict_path)

    def write_report(self, text):
        atomic_write_text(self.report_path, text)

    def write_figure(self, draw):
        """`draw(path)` into a temp file, then swapped in as figure.png."""
        tmp = temp_path(self.figure_path)
        draw(tmp)
        os.replace(tmp, self.figure_path)


class EventFollower:
    """Reads a run folder's logs incrementally: the run's events.jsonl and the log of every
    cell (found anew on each read), each from its own offset. `read()` returns the new
    events of all of them merged by time (`Events`, with `offset` that of the run's log)."""

    def __init__(self, folder):
        self.folder = folder
        self.offsets = {}          # path -> offset

    def _logs(self):
        yield self.folder.events_path
        pattern = os.path.join(glob.escape(self.folder.path), CELLS, "*", CELL_EVENTS)
        yield from sorted(glob.glob(pattern))

    def read(self):
        merged, bad = [], 0
        for path in self._logs():  # the run's log first: a cell_end read there has its cell's events behind it
            events, self.offsets[path], lost = read_events(path, self.offsets.get(path, 0))
            merged += events
            bad += lost
        merged.sort(key=lambda e: e.get("time") if isinstance(e.get("time"), (int, float)) else 0)
        return Events(merged, self.offsets.get(self.folder.events_path, 0), bad)


@dataclasses.dataclass
class CellProgress:
    """One cell as the merged logs of the latest invocation tell it."""

    cell: str
    state: str = "training"        # "training" (started, no cell_end yet) or "done"
    epoch: int = 0
    epochs: int | None = None
    resumed_from_epoch: int = 0
    host: str | None = None
    node: str | None = None        # Ray's node id
    gpus: list | None = None       # the GPU ids Ray gave the cell

    @property
    def where(self):
        """'host GPU 0,1' (or 'host' with no GPU); None for a cell that ran locally."""
        if self.host is None and self.node is None:
            return None
        name = self.host or self.node[:8]
        return f"{name} GPU {','.join(map(str, self.gpus))}" if self.gpus else name


def cell_progress(events):
    """{cell id: CellProgress} of the cells started since the last run_start (merged events)."""
    cells = {}
    for e in events:
        kind, cid = e.get("event"), e.get("cell")
        if kind == "run_start":
            cells = {}
        elif kind == "cell_start" and cid:
            cells[cid] = CellProgress(cid, epochs=e.get("epochs"), resumed_from_epoch=e.get("resumed_from_epoch") or 0)
            _place(cells[cid], e)
        elif kind == "epoch_end" and cid:
            progress = cells.setdefault(cid, CellProgress(cid))
            progress.epoch, progress.epochs = e.get("epoch") or 0, e.get("epochs", progress.epochs)
        elif kind == "cell_end" and cid:
            progress = cells.setdefault(cid, CellProgress(cid))
            progress.state = "done"
            _place(progress, e)
    return cells


def _place(progress, event):
    for key in ("host", "node", "gpus"):
        if event.get(key) is not None:
            setattr(progress, key, event[key])


def pid_alive(pid):
    """Is `pid` a live (not zombie) spatialmix process?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie: it has exited
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ")
        return b"spatialmix" in cmdline or b"recipes" in cmdline
    except OSError:
        return sys.platform != "linux"  # no /proc: trust kill(0)
