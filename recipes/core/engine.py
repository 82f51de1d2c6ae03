"""The engine every recipe runs on: grid -> cells -> run_cell -> results rows -> figure/report.

A run folder (`<runs-dir>/<recipe>/<scale>-<dataset>-seed<N>/`):
    run.json       command, versions, backend, git commit (one entry per invocation)
    events.jsonl   append-only event log (schema: recipes.runlog)
    results.csv    one row per finished cell, written atomically
    cells/<id>/    the cell's epoch checkpoint while it trains, then its plain `model.keras`
    figure.png     drawn from results.csv
    report.md      the measured claim beside the paper's
The same command again skips finished cells and resumes an interrupted one from its
last finished epoch.
"""

import dataclasses
import fcntl
import glob
import itertools
import json
import os
import platform
import subprocess
import tempfile
import time
import typing

from recipes.core import runlog
from recipes.core.choices import SCALES
from recipes.core import runtime as speed
from zoo.errors import SpatialmixError, check, check_choice



@dataclasses.dataclass(frozen=True)
class Scale:
    """What changes between scales: the data, the grid, the seeds and the budget."""

    dataset: str
    grid: dict                       # axis -> list of values; cells are the product
    budget: dict                     # epochs, batch_size, lr, weight_decay, steps_per_epoch, ...
    model: dict = dataclasses.field(default_factory=dict)   # fixed model config
    seeds: tuple = (0,)
    datasets: tuple = ()             # other datasets this scale accepts via --dataset
    overrides: dict = dataclasses.field(default_factory=dict)  # dataset -> {"model": {...}, "budget": {...}}
    note: str = ""

    def model_for(self, dataset):
        return {**self.model, **self.overrides.get(dataset, {}).get("model", {})}

    def budget_for(self, dataset):
        return {**self.budget, **self.overrides.get(dataset, {}).get("budget", {})}


@dataclasses.dataclass(frozen=True)
class Recipe:
    id: str
    title: str
    paper: str                       # e.g. "A, Fig. 5 (§4.2)"
    claim: str                       # the paper's claim, one line
    metric: str                      # the results column the claim is about
    scales: dict                     # scale name -> Scale
    run_cell: callable               # (cell: Cell) -> dict of metrics
    figure: callable                 # (rows: list[dict], path, cell_scale) -> None
    check: callable                  # (rows) -> Verdict
    reference: str = ""              # where the paper-scale hyper-parameters come from


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: str                     # "holds" | "does not hold" | "inconclusive"
    summary: str                     # one paragraph with the numbers
    table: str = ""                  # markdown table of the arms

    def __post_init__(self):
        assert self.verdict in ("holds", "does not hold", "inconclusive"), self.verdict


class RunResult(typing.NamedTuple):
    run_dir: str
    verdict: Verdict


@dataclasses.dataclass
class Cell:
    """One grid point at one seed, plus what it needs to run."""

    id: str
    config: dict                     # the grid values of this cell
    seed: int
    index: int
    total: int
    recipe: Recipe
    scale_name: str
    scale: Scale
    dataset: str
    data_dir: str | None
    dir: str
    emit: callable                   # (event, **fields) -> the logged record

    @property
    def budget(self):
        return self.scale.budget_for(self.dataset)

    @property
    def model(self):
        return self.scale.model_for(self.dataset)

    def report_epoch(self, epoch, metrics, rate, seconds, epochs):
        self.emit("epoch_end", cell=self.id, epoch=epoch, epochs=epochs, metrics=metrics,
                         samples_per_s=rate, seconds=round(seconds, 3))


def expand_grid(scale, seed_offset=0):
    """The cells of a scale: the product of the grid axes, times the seeds."""
    axes = list(scale.grid)
    cells = []
    for values in itertools.product(*(scale.grid[a] for a in axes)):
        for seed in scale.seeds:
            config = dict(zip(axes, values))
            cells.append((config, seed + seed_offset))
    return cells


def cell_id(config, seed):
    parts = [f"{k}={_short(v)}" for k, v in config.items()] + [f"seed={seed}"]
    return ",".join(parts)


def _short(value):
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def run_dir_for(runs_dir, recipe, scale_name, dataset, seed):
    return os.path.join(runs_dir, recipe.id, f"{scale_name}-{dataset.replace('/', '_')}-seed{seed}")


def resolve(recipe, scale_name, dataset):
    """Validate the scale and dataset for a recipe; return (Scale, dataset)."""
    check_choice("scale", scale_name, SCALES)
    scale = recipe.scales[scale_name]
    dataset = dataset or scale.dataset
    allowed = (scale.dataset, *scale.datasets)
    check(dataset in allowed, f"dataset {dataset!r} is not used by {recipe.id} at scale {scale_name}; "
                              f"choose one of: {', '.join(allowed)}")
    return scale, dataset


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


def remove_stale_temp_files(run_dir):
    """A kill -9 during an atomic write can leave its temp file; it was never visible as a result."""
    for pattern in (".tmp-*", "cells/*/.tmp-*"):
        for path in glob.glob(os.path.join(run_dir, pattern)):
            os.unlink(path)


class RunLock:
    """One process per run folder: a second `run` of the same folder fails clearly."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, ".lock")

    def __enter__(self):
        self.f = open(self.path, "a+")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.seek(0)
            pid = self.f.read().strip() or "?"
            self.f.close()
            raise SpatialmixError(f"run folder {os.path.dirname(self.path)} is in use by another run "
                                  f"(pid {pid}); wait for it or pass another --runs-dir")
        self.f.seek(0)
        self.f.truncate()
        self.f.write(str(os.getpid()))
        self.f.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_recipe(recipe, scale_name="cpu", dataset=None, runs_dir="runs", seed=0, data_dir=None,
               argv=None, progress=None, distribute=False):
    """Run (or resume) every cell of `recipe` at `scale_name`; write figure and report.

    `distribute=True` trains each cell data-parallel over every local device
    (recipes.core.distribute: JAX DataParallel, TensorFlow MirroredStrategy).

    `progress(event_dict)` is called with every event (the CLI prints them).
    Returns RunResult(run_dir, verdict); the figure and report are written once, here. User errors raise SpatialmixError before anything is written.
    """
    import keras

    scale, dataset = resolve(recipe, scale_name, dataset)
    check(isinstance(seed, int) and seed >= 0, f"seed must be an integer >= 0, got {seed!r}")
    check_writable(runs_dir)
    # threads (TensorFlow's only before its first op) and the backend's fast ops
    runtime = speed.configure_runtime(fast_ops=speed.fast_ops_wanted())
    if distribute:
        from recipes.core.runtime import distribute as distribute_lib

        distribute_lib.check_backend(keras.backend.backend())
        runtime = {**(runtime or {}), "distribute": {"devices": [str(d) for d in distribute_lib.devices()]}}
    from recipes.core import data
    data.num_examples(dataset, "test", data_dir=data_dir)  # a missing TFDS set fails here, before any file
    backend = keras.backend.backend()
    run_dir = run_dir_for(runs_dir, recipe, scale_name, dataset, seed)
    meta_path = os.path.join(run_dir, "run.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        check(meta["backend"] == backend,
              f"run folder {run_dir} was made with backend {meta['backend']}; rerun with --backend "
              f"{meta['backend']} to resume it, or pass another --runs-dir")
    os.makedirs(os.path.join(run_dir, "cells"), exist_ok=True)
    events = runlog.EventLog(os.path.join(run_dir, "events.jsonl"))

    def emit(event, **fields):
        record = events.emit(event, **fields)
        if progress:
            progress(record)

    with RunLock(run_dir):
        remove_stale_temp_files(run_dir)
        meta = _update_meta(meta_path, recipe, scale_name, dataset, seed, backend, argv, runtime)
        results_path = os.path.join(run_dir, "results.csv")
        done_ids = {row["cell"] for row in runlog.read_results(results_path)}
        grid = expand_grid(scale, seed)
        t_run = time.time()
        emit("run_start", recipe=recipe.id, scale=scale_name, dataset=dataset, backend=backend, seed=seed,
             cells_total=len(grid), cells_done=len(done_ids & {cell_id(c, s) for c, s in grid}),
             run_dir=os.path.abspath(run_dir), argv=argv)
        status, current = "failed", None
        try:
            for index, (config, cell_seed) in enumerate(grid, start=1):
                cid = cell_id(config, cell_seed)
                if cid in done_ids:
                    continue
                cell_dir = os.path.join(run_dir, "cells", _safe(cid))
                os.makedirs(cell_dir, exist_ok=True)
                current = Cell(cid, config, cell_seed, index, len(grid), recipe, scale_name, scale, dataset,
                               data_dir, cell_dir, emit)
                metrics = _run_one(current, emit, distribute)
                row = {"cell": cid, **config, "seed": cell_seed, "dataset": dataset, "scale": scale_name,
                       "backend": backend, **metrics}
                runlog.append_result(results_path, row)
                for leftover in _resume_checkpoints(cell_dir):
                    os.unlink(leftover)
                emit("cell_end", cell=cid, index=index, cells_total=len(grid), metrics=metrics,
                     wall_s=metrics.get("wall_s"))
            current = None
            verdict = write_outputs(recipe, run_dir)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except SpatialmixError as e:
            emit("error", message=str(e), cell=current.id if current else None, kind="user")
            raise
        except Exception as e:
            emit("error", message=f"{type(e).__name__}: {e}", cell=current.id if current else None,
                 kind="internal")
            raise
        finally:
            done = len(runlog.read_results(results_path))
            emit("run_end", status=status, cells_done=done, cells_total=len(grid),
                 wall_s=round(time.time() - t_run, 2))
    return RunResult(run_dir, verdict)


def _run_one(cell, emit, distribute=False):
    import keras

    from recipes.core.runtime.distribute import maybe_data_parallel
    from recipes.core.train import last_checkpoint

    _, resumed = last_checkpoint(cell.dir)
    emit("cell_start", cell=cell.id, index=cell.index, cells_total=cell.total, config=cell.config,
         epochs=cell.budget.get("epochs"), resumed_from_epoch=resumed)
    keras.utils.set_random_seed(cell.seed)
    t0 = time.time()
    with maybe_data_parallel(distribute):
        metrics = cell.recipe.run_cell(cell)
    metrics["wall_s"] = round(time.time() - t0, 2)
    metrics["resumed_from_epoch"] = resumed
    return metrics


def _resume_checkpoints(cell_dir):
    from recipes.core.train import checkpoints

    return checkpoints(cell_dir)


def _safe(text):
    return "".join(ch if ch.isalnum() or ch in "=-_.," else "_" for ch in text)


def _update_meta(path, recipe, scale_name, dataset, seed, backend, argv, runtime=None):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            meta = json.load(f)
    invocation = {"argv": argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
                  "versions": runlog.versions(), "git_commit": git_commit(), "host": platform.node(),
                  "runtime": runtime}
    meta.update({"recipe": recipe.id, "title": recipe.title, "paper": recipe.paper, "scale": scale_name,
                 "dataset": dataset, "seed": seed, "backend": backend,
                 "command": " ".join(argv) if argv else None})
    meta.setdefault("invocations", []).append(invocation)
    runlog.atomic_write_json(path, meta)
    return meta


def write_outputs(recipe, run_dir):
    """figure.png and report.md from results.csv (also callable on a finished folder)."""
    rows = runlog.read_results(os.path.join(run_dir, "results.csv"))
    with open(os.path.join(run_dir, "run.json")) as f:
        meta = json.load(f)
    scale = recipe.scales[meta["scale"]]
    tmp_fig = os.path.join(run_dir, ".tmp-figure.png")
    recipe.figure(rows, tmp_fig, meta)
    os.replace(tmp_fig, os.path.join(run_dir, "figure.png"))
    verdict = recipe.check(rows)
    runlog.atomic_write_text(os.path.join(run_dir, "report.md"), render_report(recipe, scale, meta, rows, verdict))
    return verdict


def render_report(recipe, scale, meta, rows, verdict):
    budget = ", ".join(f"{k} {v}" for k, v in scale.budget_for(meta["dataset"]).items())
    model = ", ".join(f"{k}={v}" for k, v in scale.model_for(meta["dataset"]).items())
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [
        f"# {recipe.id}: {recipe.title}",
        "",
        f"Paper {recipe.paper}. Scale `{meta['scale']}` on `{meta['dataset']}`, backend {meta['backend']}, "
        f"{len(rows)} cells, seeds {seeds}.",
        "",
        f"**The paper's claim:** {recipe.claim}",
        "",
        f"**Measured here:** {verdict.verdict}. {verdict.summary}",
        "",
        verdict.table,
        "",
        f"Model: {model or 'see the grid'}. Budget: {budget}.",
    ]
    if scale.note:
        lines += ["", scale.note]
    if recipe.reference:
        lines += ["", f"Paper-scale settings: {recipe.reference}"]
    lines += ["", "Spread is the sample standard deviation over seeds. Each cell's numbers are in "
                  "results.csv; the run's events are in events.jsonl.", ""]
    return "\n".join(lines)

