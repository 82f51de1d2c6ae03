"""The TUI's view of run folders: found on disk, followed incrementally, started and stopped
through `spatialmix run` subprocesses. No Textual here, and no Keras.

Every file is read through recipes.core.runfolder. This module computes nothing about the
experiment: the verdict is the one frozen in verdict.json when the run finished, the state
is what the event log says (with the lock's holder for a run that has not ended yet).
"""

import csv
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from recipes.core import runfolder

STATES = ("starting", "running", "finished", "failed", "interrupted", "no events")
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


# ---------------------------------------------------------------- reading the files

def read_table(path):
    """(columns, rows as lists of str) of a CSV file; ([], []) if there is none."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            columns = next(reader, [])
            return columns, [row + [""] * (len(columns) - len(row)) for row in reader]
    except OSError:
        return [], []


def frozen_verdict(run_dir):
    """The run's frozen verdict ('holds', 'does not hold', 'inconclusive'), or None."""
    record = runfolder.RunFolder(run_dir).frozen_verdict()
    return record.get("verdict") if record else None


find_run_dirs = runfolder.find_run_dirs


# ---------------------------------------------------------------- one run, followed

@dataclasses.dataclass
class CellCurve:
    """One cell's per-epoch metrics, as the event log gives them."""

    cell: str
    index: int = 0
    epochs: int | None = None
    epoch: list = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=lambda: {m: [] for m in METRICS})
    seconds: list = dataclasses.field(default_factory=list)
    samples_per_s: float | None = None
    done: bool = False
    where: str | None = None      # the Ray node and GPUs that train(ed) it ('host GPU 0'); None: locally


class RunFollower:
    """Follows one run folder: on each `update()` reads on from the last offsets of its event
    log and of every cell's own log (a Ray run's cells write their epochs there), merged by time."""

    def __init__(self, run_dir):
        self.folder = runfolder.RunFolder(run_dir)
        self.run_dir = self.folder.path
        self.logs = self.folder.follow()
        self.offset = 0
        self.bad_lines = 0
        self.reset()

    def reset(self):
        self.meta = {}
        self.cells = {}
        self.cells_total = None
        self.cells_done = 0
        self.current = None          # cell id being trained (the newest started, when several train at once)
        self.training = []           # cell ids started and not ended, oldest first
        self.run_end = None          # the run_end event after the last run_start
        self.last_error = None       # message of the newest error event
        self.starts = 0
        self.first_time = None
        self.last_time = None

    def update(self):
        """Read the events appended since the last call. Returns how many were read."""
        try:
            events, self.offset, bad = self.logs.read()
        except OSError:
            return 0
        self.bad_lines += bad
        for event in events:
            self._apply(event)
        return len(events) + bad

    def _apply(self, e):
        kind = e.get("event")
        t = e.get("time")
        if isinstance(t, (int, float)):
            self.first_time = self.first_time or t
            self.last_time = t
        if kind == "run_start":
            self.starts += 1
            self.meta.update({k: e.get(k) for k in ("recipe", "scale", "dataset", "backend", "seed", "argv")})
            self.cells_total = e.get("cells_total")
            self.cells_done = e.get("cells_done") or 0
            self.run_end = None
            self.current = None
            self.training = []
        elif kind == "cell_start":
            cid = e.get("cell")
            curve = self.cells.get(cid)
            if curve is None or curve.done:
                curve = self.cells[cid] = CellCurve(cid)
            curve.index, curve.epochs = e.get("index") or 0, e.get("epochs")
            curve.where = runfolder.CellProgress(cid, host=e.get("host"), node=e.get("node"), gpus=e.get("gpus")).where
            self.cells_total = e.get("cells_total", self.cells_total)
            self.current = cid
            if cid not in self.training:
                self.training.append(cid)
        elif kind == "epoch_end":
            cid = e.get("cell")
            curve = self.cells.setdefault(cid, CellCurve(cid))
            epoch = e.get("epoch")
            if epoch in curve.epoch:  # the same epoch again (resumed before its checkpoint): keep the newest
                i = curve.epoch.index(epoch)
                del curve.epoch[i:]
                del curve.seconds[i:]
                for values in curve.metrics.values():
                    del values[i:]
            curve.epoch.append(epoch)
            curve.epochs = e.get("epochs", curve.epochs)
            metrics = e.get("metrics") or {}
            for m in METRICS:
                curve.metrics[m].append(metrics.get(m))
            curve.seconds.append(e.get("seconds"))
            curve.samples_per_s = e.get("samples_per_s")
        elif kind == "cell_end":
            cid = e.get("cell")
            curve = self.cells.setdefault(cid, CellCurve(cid))
            curve.done = True
            curve.where = runfolder.CellProgress(cid, host=e.get("host"), node=e.get("node"),
                                                 gpus=e.get("gpus")).where or curve.where
            self.cells_done += 1
            self.cells_total = e.get("cells_total", self.cells_total)
            if cid in self.training:
                self.training.remove(cid)
            self.current = self.training[-1] if self.training else None
        elif kind == "run_end":
            self.run_end = e
            self.cells_done = e.get("cells_done", self.cells_done)
            self.cells_total = e.get("cells_total", self.cells_total)
        elif kind == "error":
            self.last_error = e.get("message")

    def snapshot(self, now=None):
        """A `RunView` of what is known now (a copy: safe to hand to another thread)."""
        meta = self.folder.meta() or {}
        info = {**{k: meta.get(k) for k in ("recipe", "scale", "dataset", "backend", "seed")},
                **{k: v for k, v in self.meta.items() if v is not None}}
        pid = self.folder.lock_holder()
        if self.run_end is not None:
            state = self.run_end.get("status") or "failed"
        elif pid is not None:
            state = "running"
        elif self.starts:
            state = "interrupted"    # no run_end and nobody holds the lock: killed (kill -9, a crash)
        else:
            state = "no events"
        current = self.cells.get(self.current) if self.current else None
        view = RunView(
            run_dir=self.run_dir,
            recipe=info.get("recipe") or os.path.basename(os.path.dirname(self.run_dir)),
            name=os.path.basename(self.run_dir),
            scale=info.get("scale"), dataset=info.get("dataset"), backend=info.get("backend"),
            seed=info.get("seed"), state=state, pid=pid if state == "running" else None,
            cells_done=self.cells_done, cells_total=self.cells_total,
            current_cell=self.current,
            training=[(cid, self.cells[cid].epoch[-1] if self.cells[cid].epoch else 0, self.cells[cid].epochs,
                       self.cells[cid].where) for cid in self.training if cid in self.cells] if state == "running" else [],
            error=self.last_error if state == "failed" else None,
            last_error=self.last_error,
            curves={cid: _copy_curve(c) for cid, c in self.cells.items()},
            argv=_last_argv(meta) or self.meta.get("argv"),
            command=meta.get("command"),
            verdict=frozen_verdict(self.run_dir),
            has_results=os.path.exists(self.folder.results_path),
            updated=self.last_time, bad_lines=self.bad_lines,
        )
        if current is not None and state == "running":
            view.epoch = current.epoch[-1] if current.epoch else 0
            view.epochs = current.epochs
            view.samples_per_s = current.samples_per_s
            view.eta_cell, view.eta_run = _eta(self, current)
        else:
            rates = [c.samples_per_s for c in self.cells.values() if c.samples_per_s]
            view.samples_per_s = rates[-1] if rates else None
        return view


def _copy_curve(c):
    return CellCurve(c.cell, c.index, c.epochs, list(c.epoch), {k: list(v) for k, v in c.metrics.items()},
                     list(c.seconds), c.samples_per_s, c.done, c.where)


def _last_argv(meta):
    invocations = meta.get("invocations") or []
    return invocations[-1].get("argv") if invocations else None


def _eta(follower, current):
    """Seconds left in the current cell and in the run, from the epoch times logged so far."""
    durations = [s for s in current.seconds if isinstance(s, (int, float))]
    if not durations:
        durations = [s for c in follower.cells.values() for s in c.seconds if isinstance(s, (int, float))]
    if not durations or not current.epochs:
        return None, None
    per_epoch = sum(durations[-3:]) / len(durations[-3:])
    done = current.epoch[-1] if current.epoch else 0
    cell_left = max(current.epochs - done, 0) * per_epoch
    total = follower.cells_total or 0
    later = max(total - follower.cells_done - 1, 0)
    return cell_left, cell_left + later * current.epochs * per_epoch


@dataclasses.dataclass
class RunView:
    """What the screens show about one run (a snapshot)."""

    run_dir: str
    recipe: str
    name: str
    state: str
    scale: str | None = None
    dataset: str | None = None
    backend: str | None = None
    seed: int | None = None
    pid: int | None = None
    cells_done: int = 0
    cells_total: int | None = None
    current_cell: str | None = None
    training: list = dataclasses.field(default_factory=list)   # [(cell, epoch, epochs, where)] of a running run
    epoch: int | None = None
    epochs: int | None = None
    samples_per_s: float | None = None
    eta_cell: float | None = None
    eta_run: float | None = None
    error: str | None = None
    last_error: str | None = None
    curves: dict = dataclasses.field(default_factory=dict)
    argv: list | None = None
    command: str | None = None
    verdict: str | None = None
    has_results: bool = False
    updated: float | None = None
    bad_lines: int = 0
    launch: bool = False          # a start that failed before it made a folder

    @property
    def key(self):
        return self.run_dir

    @property
    def label(self):
        return f"{self.recipe}/{self.name}"

    @property
    def cells_text(self):
        return f"{self.cells_done}/{self.cells_total if self.cells_total is not None else '?'}"

    @property
    def where_text(self):
        """Where the cells train or trained: the Ray nodes/GPUs of the cells training now, else
        how many hosts ran its cells as Ray tasks; '' for a run that trained in its own process."""
        placed = [w for *_, w in self.training if w]
        if placed:
            return ", ".join(placed[:2]) + (f" +{len(placed) - 2}" if len(placed) > 2 else "")
        hosts = {c.where.split(" GPU ")[0] for c in self.curves.values() if c.where}
        return f"ray · {len(hosts)} host{'s' if len(hosts) != 1 else ''}" if hosts else ""

    @property
    def epoch_text(self):
        if self.epoch is None or not self.epochs:
            return ""
        return f"{self.epoch}/{self.epochs}"


def format_seconds(seconds):
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------- starting and stopping

def spatialmix_command():
    """How to call the `spatialmix` CLI: the console script beside this Python, else `-m`."""
    script = os.path.join(os.path.dirname(sys.executable), "spatialmix")
    if os.path.exists(script):
        return [script]
    found = shutil.which("spatialmix")
    return [found] if found else [sys.executable, "-m", "recipes.cli"]


def run_argv(recipe, scale, runs_dir, dataset=None, backend=None, seed=0, data_dir=None):
    argv = [*spatialmix_command(), "run", recipe, "--scale", scale, "--runs-dir", os.path.abspath(runs_dir)]
    if dataset:
        argv += ["--dataset", dataset]
    if backend:
        argv += ["--backend", backend]
    if seed:
        argv += ["--seed", str(seed)]
    if data_dir:
        argv += ["--data-dir", os.path.abspath(data_dir)]
    return argv


def resume_argv(view):
    """The command that resumes `view`'s run: its recorded argv, pinned to the folder's runs
    dir (the original may have been relative to another directory) and to its backend."""
    recorded = list(view.argv or [])
    if "run" not in recorded:
        raise ValueError(f"{view.label}: run.json records no command to resume")
    args = recorded[recorded.index("run") + 1:]
    kept, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--runs-dir", "--backend"):
            skip = True
            continue
        if a.startswith(("--runs-dir=", "--backend=")):
            continue
        kept.append(a)
    runs_dir = os.path.dirname(os.path.dirname(view.run_dir))
    argv = [*spatialmix_command(), "run", *kept, "--runs-dir", runs_dir]
    if view.backend:
        argv += ["--backend", view.backend]
    return argv


@dataclasses.dataclass
class Launch:
    """A `spatialmix run` this TUI started."""

    argv: list
    run_dir: str | None
    process: subprocess.Popen
    stderr_path: str
    started: float
    returncode: int | None = None

    def poll(self):
        if self.returncode is None:
            self.returncode = self.process.poll()  # reaps it: a finished run is no zombie
        return self.returncode

    def stderr_tail(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return None
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or [None])[-1]


def start_run(argv, run_dir=None, env=None):
    """Start `spatialmix run ...` in its own session: it outlives this TUI, and Ctrl-C in the
    TUI's terminal does not reach it. Its stderr goes to a temp file (for a start that fails
    before it has a folder, whose one-line error is the only trace)."""
    fd, stderr_path = tempfile.mkstemp(prefix="spatialmix-tui-", suffix=".stderr")
    with os.fdopen(fd, "w") as stderr:
        process = subprocess.Popen([*argv, "--quiet"] if "--quiet" not in argv else argv,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True, env=env)
    return Launch(list(argv), run_dir, process, stderr_path, time.time())


def cancel_run(pid):
    """SIGINT: the engine writes run_end `interrupted` and the folder stays resumable."""
    os.kill(pid, signal.SIGINT)


def expected_run_dir(runs_dir, recipe, scale_name, dataset, seed):
    """Where `spatialmix run` will put this run."""
    return os.path.abspath(runfolder.run_dir_for(runs_dir, recipe, scale_name, dataset, seed))


# ---------------------------------------------------------------- every run under a runs dir

class RunStore:
    """Every run under a runs dir, each followed from its last offset, plus the TUI's starts."""

    def __init__(self, runs_dir):
        self.runs_dir = os.path.abspath(runs_dir)
        self.followers = {}
        self.launches = []

    def refresh(self):
        """Read what changed; returns [RunView], newest first."""
        for launch in self.launches:
            launch.poll()
        for run_dir in find_run_dirs(self.runs_dir):
            self.followers.setdefault(run_dir, RunFollower(run_dir))
        views = []
        for run_dir, follower in list(self.followers.items()):
            if not os.path.isdir(run_dir):
                del self.followers[run_dir]
                continue
            follower.update()
            views.append(follower.snapshot())
        by_dir = {v.run_dir: v for v in views}
        for launch in self.launches:
            view = by_dir.get(launch.run_dir)
            if launch.returncode is None:  # still loading its frameworks, or running
                if view is None:
                    recipe = launch.argv[launch.argv.index("run") + 1] if "run" in launch.argv else "?"
                    views.append(RunView(run_dir=launch.run_dir or f"launch-{launch.process.pid}", recipe=recipe,
                                         name=os.path.basename(launch.run_dir or "") or "?", state="starting",
                                         pid=launch.process.pid, argv=launch.argv, updated=launch.started,
                                         launch=True))
                elif view.state != "running" and launch.started > (view.updated or 0):
                    view.state, view.pid, view.error = "starting", launch.process.pid, None
                continue
            if launch.returncode == 0:
                continue
            tail = launch.stderr_tail()
            if view is None:          # ended before it made its folder (a user error: exit 2; Ctrl-C)
                recipe = launch.argv[launch.argv.index("run") + 1] if "run" in launch.argv else "?"
                stopped = launch.returncode in (130, -signal.SIGINT)
                views.append(RunView(run_dir=launch.run_dir or f"launch-{launch.process.pid}", recipe=recipe,
                                     name=os.path.basename(launch.run_dir or "") or "(not started)",
                                     state="interrupted" if stopped else "failed", error=None if stopped else tail,
                                     last_error=tail, argv=launch.argv, updated=launch.started, launch=True))
            elif view.state == "failed" and not view.error:
                view.error = tail
            elif view.state != "running" and launch.started > (view.updated or 0):
                # ended after the folder's last event without logging (the lock was taken; Ctrl-C early)
                if launch.returncode in (130, -signal.SIGINT):
                    view.state = "interrupted"
                else:
                    view.state, view.error = "failed", tail
        views.sort(key=lambda v: (-(v.updated or 0), v.run_dir))
        return views

    def start(self, argv, run_dir=None):
        launch = start_run(argv, run_dir)
        self.launches.append(launch)
        return launch

    def running_launches(self):
        return [launch for launch in self.launches if launch.poll() is None]


def latest_verdicts(runs_dir, recipe_id):
    """{scale: frozen verdict} of the newest finished run of `recipe_id` at each scale."""
    newest = {}
    for folder, meta in runfolder.recipe_folders(runs_dir, recipe_id):
        record = folder.frozen_verdict()
        if not record:
            continue
        scale = meta.get("scale") or record.get("scale")
        stamp = os.path.getmtime(folder.verdict_path) if os.path.exists(folder.verdict_path) else 0
        if scale not in newest or stamp > newest[scale][0]:
            newest[scale] = (stamp, record.get("verdict"))
    return {scale: verdict for scale, (_, verdict) in newest.items()}
