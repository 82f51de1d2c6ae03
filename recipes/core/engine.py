"""The engine every recipe runs on: grid -> cells -> run_cell -> results rows -> figure/report.

`run_recipe` runs (or resumes) every cell of a recipe at one scale into one run folder
(its layout and files: recipes.core.runfolder). The same command again skips finished
cells and resumes an interrupted one from its last finished epoch. When the last cell is
done it draws the figure, judges the claim, freezes the verdict in verdict.json and
writes report.md. Where the cells train is the executor's part
(recipes.core.runtime.executors): in this process, one after another (the default), or
each as a Ray task on a cluster (`spatialmix run ... --executor ray`, `run_cell_task`).
"""

import dataclasses
import itertools
import os
import time
import typing

from recipes.core import claims, runfolder
from recipes.core.choices import SCALES
from recipes.core import runtime
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
    figure: callable                 # (rows: list[dict], path, meta) -> None
    check: callable                  # (rows, thresholds at the run's scale) -> claims.Finding
    thresholds: claims.Thresholds = claims.NO_THRESHOLDS   # what the check judges by, declared once
    reference: str = ""              # where the paper-scale hyper-parameters come from


class RunResult(typing.NamedTuple):
    run_dir: str
    finding: claims.Finding


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

    @property
    def model_path(self):
        """Where the cell's trained, plain checkpoint goes."""
        return os.path.join(self.dir, runfolder.MODEL)

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
    return runfolder.run_dir_for(runs_dir, recipe.id, scale_name, dataset, seed)


def resolve(recipe, scale_name, dataset):
    """Validate the scale and dataset for a recipe; return (Scale, dataset)."""
    check_choice("scale", scale_name, SCALES)
    scale = recipe.scales[scale_name]
    dataset = dataset or scale.dataset
    allowed = (scale.dataset, *scale.datasets)
    check(dataset in allowed, f"dataset {dataset!r} is not used by {recipe.id} at scale {scale_name}; "
                              f"choose one of: {', '.join(allowed)}")
    return scale, dataset


check_writable = runfolder.check_writable


def run_recipe(recipe, scale_name="cpu", dataset=None, runs_dir="runs", seed=0, data_dir=None,
               argv=None, progress=None, distribute=False, executor=None):
    """Run (or resume) every cell of `recipe` at `scale_name`; then figure, verdict and report.

    `distribute=True` trains each cell data-parallel over every local device
    (recipes.core.runtime.distribute: JAX DataParallel, TensorFlow MirroredStrategy).
    `executor` says where the cells train (recipes.core.runtime.executors): None or a
    `LocalExecutor` trains them here, one after another; a `RayExecutor` submits each as a
    Ray task, and this process stays the only writer of results.csv and the run's log.
    `progress(event_dict)` is called with every event (the CLI prints them).
    Returns RunResult(run_dir, finding). User errors raise SpatialmixError before anything
    is written.
    """
    import keras

    from recipes.core.runtime import executors

    executor = executor or executors.LocalExecutor()
    scale, dataset = resolve(recipe, scale_name, dataset)
    check(isinstance(seed, int) and seed >= 0, f"seed must be an integer >= 0, got {seed!r}")
    runfolder.check_writable(runs_dir)
    # threads (TensorFlow's only before its first op) and the backend's fast ops
    settings = runtime.configure_runtime(fast_ops=runtime.fast_ops_wanted())
    if distribute:
        from recipes.core.runtime import distribute as distribute_lib

        distribute_lib.check_backend(keras.backend.backend())
        if executor.kind == "local":  # under Ray each cell's task sees the devices Ray gave it
            settings = {**(settings or {}), "distribute": {"devices": [str(d) for d in distribute_lib.devices()]}}
    from recipes.core import data
    data.num_examples(dataset, "test", data_dir=data_dir)  # a missing TFDS set fails here, before any file
    backend = keras.backend.backend()
    folder = runfolder.RunFolder(run_dir_for(runs_dir, recipe, scale_name, dataset, seed))
    folder.check_backend(backend)
    if os.path.isdir(folder.path):
        with folder.lock():  # a second driver is refused here, before it starts or joins a cluster
            pass
    try:
        where = executor.open(backend)
        if where is not None:
            settings = {**(settings or {}), "executor": where}
        folder.create()
        log = folder.event_log(listener=progress)
        with folder.lock():
            return _drive(recipe, scale_name, scale, dataset, seed, data_dir, argv, progress, distribute, executor,
                          settings, backend, folder, log.emit)
    finally:
        executor.close()


def _drive(recipe, scale_name, scale, dataset, seed, data_dir, argv, progress, distribute, executor, settings,
           backend, folder, emit):
    """The driver's part, under the run lock: pending cells to the executor, rows and cell_end
    events from what it returns, then the figure, verdict and report."""
    folder.remove_stale_temp_files()
    folder.record_invocation(
        {"recipe": recipe.id, "title": recipe.title, "paper": recipe.paper, "scale": scale_name,
         "dataset": dataset, "seed": seed, "backend": backend, "command": " ".join(argv) if argv else None},
        runfolder.invocation(argv, settings))
    done_ids = {row["cell"] for row in folder.rows()}
    grid = expand_grid(scale, seed)
    t_run = time.time()
    emit("run_start", recipe=recipe.id, scale=scale_name, dataset=dataset, backend=backend, seed=seed,
         cells_total=len(grid), cells_done=len(done_ids & {cell_id(c, s) for c, s in grid}),
         run_dir=folder.path, argv=argv)
    token = folder.invocation_token()
    from recipes.core.runtime.executors import CellJob

    jobs = [CellJob(cell_id(config, cell_seed), config, cell_seed, index, len(grid), recipe.id, scale_name, dataset,
                    data_dir, folder.path, distribute, token)
            for index, (config, cell_seed) in enumerate(grid, start=1) if cell_id(config, cell_seed) not in done_ids]
    status, current = "failed", None

    def train_here(job):  # the local executor: in this process, events to the run's log
        nonlocal current
        current = Cell(job.cell_id, job.config, job.seed, job.index, job.total, recipe, scale_name, scale, dataset,
                       data_dir, folder.cell_dir(job.cell_id, create=True), emit)
        return _run_one(current, emit, distribute)

    try:
        for job, metrics, where in executor.run(jobs, train_here, run_cell_task, folder, progress):
            row = {"cell": job.cell_id, **job.config, "seed": job.seed, "dataset": dataset, "scale": scale_name,
                   "backend": backend, **metrics}
            folder.append_row(row)
            for leftover in _resume_checkpoints(folder.cell_dir(job.cell_id)):
                os.unlink(leftover)
            emit("cell_end", cell=job.cell_id, index=job.index, cells_total=len(grid), metrics=metrics,
                 wall_s=metrics.get("wall_s"), **{k: where[k] for k in ("host", "node", "gpus") if k in where})
            current = None
        finding = write_outputs(recipe, folder.path, freeze=True)
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
        emit("run_end", status=status, cells_done=len(folder.rows()), cells_total=len(grid),
             wall_s=round(time.time() - t_run, 2))
    return RunResult(folder.path, finding)


def run_cell_task(job):
    """One cell inside its Ray task (recipes.core.runtime.executors submits it): check that this
    node sees the run folder, take the cell's lock, train with the events going to the cell's
    own log, resuming from its last epoch checkpoint. Returns {"metrics", "placement"}."""
    from recipes.core.registry import get_recipe
    from recipes.core.runtime import executors

    where = executors.placement()
    node = f"Ray node {where['host']} ({where['ip']}, {where['node'][:8]})"
    folder = runfolder.RunFolder(job.run_dir)
    folder.check_visible(job.token, node)
    check(job.data_dir is None or os.path.isdir(job.data_dir),
          f"{node} cannot see --data-dir {job.data_dir}: put it on a filesystem that every node mounts at the same path")
    with folder.cell_lock(job.cell_id, wait_s=executors.CELL_LOCK_WAIT_S):
        runtime.configure_runtime(fast_ops=runtime.fast_ops_wanted())
        recipe = get_recipe(job.recipe_id)
        scale, dataset = resolve(recipe, job.scale_name, job.dataset)
        emit = folder.cell_event_log(job.cell_id).emit
        cell = Cell(job.cell_id, job.config, job.seed, job.index, job.total, recipe, job.scale_name, scale, dataset,
                    job.data_dir, folder.cell_dir(job.cell_id, create=True), emit)
        metrics = _run_one(cell, emit, job.distribute, where)
    return {"metrics": metrics, "placement": where}


def _run_one(cell, emit, distribute=False, where=None):
    import keras

    from recipes.core.runtime.distribute import maybe_data_parallel
    from recipes.core.train import last_checkpoint

    _, resumed = last_checkpoint(cell.dir)
    emit("cell_start", cell=cell.id, index=cell.index, cells_total=cell.total, config=cell.config,
         epochs=cell.budget.get("epochs"), resumed_from_epoch=resumed, **(where or {}))
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


def write_outputs(recipe, run_dir, freeze=False):
    """figure.png and report.md from results.csv; with `freeze`, the verdict of these rows is
    frozen in verdict.json (a finished run; kept as it is when the rows are the same).
    Returns the finding the report shows."""
    folder = runfolder.RunFolder(run_dir)
    rows, meta = folder.rows(), folder.meta()
    scale = recipe.scales[meta["scale"]]
    folder.write_figure(lambda path: recipe.figure(rows, path, meta))
    finding = claims.judge(recipe, meta["scale"], rows)
    frozen = folder.frozen_verdict()
    if freeze and (frozen is None or frozen.get("cells") != len(rows)):
        frozen = claims.verdict_record(recipe, meta["scale"], rows, finding)
        frozen["git_commit"] = runfolder.git_commit()
        folder.write_verdict(frozen)
    folder.write_report(render_report(recipe, scale, meta, rows, finding, frozen))
    return claims.Finding(frozen["verdict"], frozen["summary"], frozen["table"]) if frozen else finding


def render_report(recipe, scale, meta, rows, finding, frozen=None):
    """report.md: the paper's claim beside the frozen verdict (and today's, if it differs)."""
    budget = ", ".join(f"{k} {v}" for k, v in scale.budget_for(meta["dataset"]).items())
    model = ", ".join(f"{k}={v}" for k, v in scale.model_for(meta["dataset"]).items())
    seeds = sorted({int(r["seed"]) for r in rows})
    shown = claims.Finding(frozen["verdict"], frozen["summary"], frozen["table"]) if frozen else finding
    lines = [
        f"# {recipe.id}: {recipe.title}",
        "",
        f"Paper {recipe.paper}. Scale `{meta['scale']}` on `{meta['dataset']}`, backend {meta['backend']}, "
        f"{len(rows)} cells, seeds {seeds}.",
        "",
        f"**The paper's claim:** {recipe.claim}",
        "",
        f"**Measured here:** {shown.verdict}. {shown.summary}",
        "",
        shown.table,
    ]
    if frozen and str(finding.verdict) != frozen["verdict"]:
        why = "; ".join(claims.differences(frozen, recipe, meta["scale"], rows)) or "unknown"
        lines += ["", f"**Today's check says:** {finding.verdict} ({why}). {finding.summary}"]
    if frozen:
        lines += ["", f"Verdict frozen {frozen.get('frozen', '?')} (verdict.json), judged by: "
                      + ", ".join(f"{k} {v}" for k, v in frozen.get("thresholds", {}).items()) + "."]
    lines += ["", f"Model: {model or 'see the grid'}. Budget: {budget}."]
    if scale.note:
        lines += ["", scale.note]
    if recipe.reference:
        lines += ["", f"Paper-scale settings: {recipe.reference}"]
    lines += ["", "Spread is the sample standard deviation over seeds. Each cell's numbers are in "
                  "results.csv; the run's events are in events.jsonl.", ""]
    return "\n".join(lines)
