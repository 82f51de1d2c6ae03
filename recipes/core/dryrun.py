"""A dry run: a recipe's whole grid with every cell cut short, before a GPU hour is spent.

    spatialmix run convmixer-mixing --scale paper --data-dir ~/tensorflow_datasets --dry-run

Every cell of the grid runs as the real run would (the same data, models, training code,
attacks, figure and report), cut to one epoch of two training steps and two test batches
(`DRY_BUDGET`; test-time repetitions such as shuffle-test-time's 200 shuffled passes are cut
to two, `DRY_MODEL`). It runs into a fresh throwaway folder (a new temporary directory, never
the runs dir), draws the figure and writes the report there, and removes the cells' 2-step
models at the end. A crash in any cell, the figure or the check shows here, in minutes, not
after days of training.

It ends with what the real run will cost on this machine: cells × epochs × steps per epoch
(from the real budget and the real training split), and the measured seconds of one
training step of each cell (the second step: the first carries tracing and compilation),
summed into an ETA per net and in total. The ETA counts training steps only; the per-epoch
test passes, checkpoints and model building come on top. The verdict of a dry run means
nothing (two steps of training).

    from recipes.core import dryrun
    result = dryrun.dry_run(recipe, "paper", "cifar10", data_dir="~/tensorflow_datasets")
    print(dryrun.format_cost(result.cost))
"""

import dataclasses
import math
import os
import shutil
import statistics
import tempfile
import typing

from recipes.core import engine, runfolder
from recipes.core.engine import expand_grid

DRY_BUDGET = {"epochs": 1, "steps_per_epoch": 2, "test_batches": 2, "time_steps": True}
DRY_MODEL = {"passes": 2}   # repeated test-time evaluations (a model key of shuffle-test-time)


class NetCost(typing.NamedTuple):
    net: str                 # the zoo model trained ("-" for cells that train nothing)
    cells: int
    steps: int               # training steps of the real run, these cells together
    step_s: tuple            # measured seconds per step: (median, min, max) over the cells
    seconds: float           # the real run's training seconds for these cells
    epochs: int = 0          # this net's epochs and batch in the real run (its own where the
    batch_size: int | None = None   # budget has `by_net` entries, else the scale's)


class Cost(typing.NamedTuple):
    recipe: str
    scale: str
    dataset: str
    cells: int               # cells of the real run
    cells_measured: int      # cells the dry run ran (all of them unless a grid was given)
    epochs: int
    steps_per_epoch: int
    batch_size: int | None   # the real run's
    measured_batch_size: int | None   # the batch the steps were timed at
    nets: list               # [NetCost]
    seconds: float           # ETA of the measured cells' training (and of the cells that train nothing)
    runtime: dict            # backend, device, precision the steps were timed under


class DryRun(typing.NamedTuple):
    run_dir: str
    finding: object
    cost: Cost


def cut_scale(scale, dataset, *, grid=None, batch_size=None, batch_cap=None):
    """The scale as a dry run runs it on `dataset`: the dataset's budget with DRY_BUDGET on top
    (and `batch_size` if given, or every batch at most `batch_cap`), its model with DRY_MODEL's
    repetitions cut, and `grid` (axis -> values) instead of the scale's grid if given."""
    def cut(budget):   # what the dry run puts on top of `budget`
        out = dict(DRY_BUDGET)
        if batch_size:
            out["batch_size"] = int(batch_size)
        elif batch_cap and budget.get("batch_size"):
            out["batch_size"] = min(int(budget["batch_size"]), int(batch_cap))
        return out

    base = scale.budget_for(dataset)
    budget = {**base, **cut(base)}
    if "by_net" in budget:   # a net's own budget (paper B's ImageNet recipes) is cut the same way
        budget["by_net"] = {net: {**own, **cut({**base, **own})} for net, own in base["by_net"].items()}
    model = {k: (min(v, DRY_MODEL[k]) if k in DRY_MODEL else v) for k, v in scale.model_for(dataset).items()}
    note = (f"Dry run: every cell cut to {DRY_BUDGET['epochs']} epoch of {DRY_BUDGET['steps_per_epoch']} steps and "
            f"{DRY_BUDGET['test_batches']} test batches; its numbers and verdict mean nothing. " + scale.note).strip()
    return dataclasses.replace(scale, grid=dict(grid or scale.grid), budget=budget, model=model, overrides={},
                               note=note)


def cut_recipe(recipe, scale_name, dataset, *, grid=None, batch_size=None, batch_cap=None):
    """`recipe` with the scale `scale_name` cut (`cut_scale`); everything else is the recipe's own."""
    scale, dataset = engine.resolve(recipe, scale_name, dataset)
    cut = cut_scale(scale, dataset, grid=grid, batch_size=batch_size, batch_cap=batch_cap)
    return dataclasses.replace(recipe, scales={**recipe.scales, scale_name: cut})


def dry_run(recipe, scale_name="paper", dataset=None, data_dir=None, *, seed=0, runs_dir=None, argv=None,
            progress=None, grid=None, batch_size=None, batch_cap=None, keep_models=False):
    """Run every cell of `recipe` at `scale_name`, cut short (`cut_scale`), into a fresh folder
    under `runs_dir` (default: a new temporary directory); draw the figure and the report;
    remove the cells' models unless `keep_models`. Returns DryRun(run_dir, finding, cost).

    `grid` (axis -> values) runs only those cells (for tests); `batch_size` times the steps at
    another batch than the recipe's, `batch_cap` at most that batch (`--dry-run-batch`, and a
    paper-scale dry run on a host without a GPU); the cost then says its ETA is not the real
    run's. User errors raise SpatialmixError before anything is written."""
    from recipes.core import data

    scale, dataset = engine.resolve(recipe, scale_name, dataset)
    cut = cut_recipe(recipe, scale_name, dataset, grid=grid, batch_size=batch_size, batch_cap=batch_cap)
    if data.dataset_spec(dataset).source == "tfds":
        data.num_examples(dataset, "train", data_dir=data_dir)   # not prepared: one line, before any folder
    if runs_dir is not None:
        engine.check_writable(runs_dir)
        os.makedirs(runs_dir, exist_ok=True)
    where = tempfile.mkdtemp(prefix=f"spatialmix-dry-run-{recipe.id}-", dir=runs_dir)
    result = engine.run_recipe(cut, scale_name, dataset, where, seed, data_dir, argv=argv, progress=progress)
    folder = runfolder.RunFolder(result.run_dir)
    rows = folder.rows()
    if not keep_models:
        for row in rows:
            path = folder.cell_model(row["cell"])
            if os.path.exists(path):
                os.unlink(path)
    cost = real_cost(recipe, scale_name, dataset, data_dir, rows, seed=seed,
                     runtime=(folder.meta().get("invocations") or [{}])[-1].get("runtime") or {},
                     measured_batch_size=cut.scales[scale_name].budget.get("batch_size"))
    return DryRun(result.run_dir, result.finding, cost)


def real_cost(recipe, scale_name, dataset, data_dir, rows, *, seed=0, runtime=None, measured_batch_size=None):
    """What the real run of `recipe` at `scale_name` on `dataset` costs, from a dry run's rows:
    its cells, epochs and steps per epoch, and each measured cell's seconds per step."""
    from recipes.core import data

    scale = recipe.scales[scale_name]
    budget = scale.budget_for(dataset)
    cells = len(expand_grid(scale, seed))

    def epochs_and_steps(budget):
        epochs = int(budget.get("epochs") or 0)
        steps = budget.get("steps_per_epoch")
        if epochs and not isinstance(steps, int):   # the whole training split per epoch (None, or per-model dicts)
            n = data.num_examples(dataset, "train", data_dir=data_dir, **budget.get("dataset_options", {}))
            steps = math.ceil(n / budget["batch_size"])
        return epochs, int(steps or 0)

    epochs, steps = epochs_and_steps(budget)
    batch = budget.get("batch_size")
    by_net, net_budget = {}, {}
    for row in rows:
        step_s = _number(row.get("train_step_s"))
        net = row.get("train_model") or "?"
        if step_s is None:   # a cell that trains nothing: the dry run did all of its work
            by_net.setdefault("-", []).append((0, 0.0, _number(row.get("wall_s")) or 0.0))
            continue
        own = budget.get("by_net", {}).get(net)   # a net with its own epochs and batch (paper B's ImageNet)
        n_epochs, n_steps = epochs_and_steps({**budget, **own}) if own else (epochs, steps)
        by_net.setdefault(net, []).append((n_epochs * n_steps, step_s, n_epochs * n_steps * step_s))
        net_budget[net] = (n_epochs, (own or budget).get("batch_size", batch))
    nets = []
    for net, items in sorted(by_net.items()):
        times = [s for _, s, _ in items]
        nets.append(NetCost(net, len(items), sum(n for n, _, _ in items),
                            (statistics.median(times), min(times), max(times)), sum(sec for _, _, sec in items),
                            *net_budget.get(net, (0, None))))
    return Cost(recipe.id, scale_name, dataset, cells, len(rows), epochs, steps, batch, measured_batch_size, nets,
                sum(n.seconds for n in nets), dict(runtime or {}))


def _number(value):
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_cost(cost):
    """The cost as the CLI prints it."""
    rt = cost.runtime
    where = ", ".join(str(v) for v in (rt.get("backend"), rt.get("device"), rt.get("precision")) if v)
    gpus = f" ({', '.join(rt['gpus'])})" if rt.get("gpus") else ""
    lines = [f"what the real run costs ({cost.recipe}, {cost.scale} scale on {cost.dataset}; {where}{gpus}):"]
    if not cost.epochs:
        lines.append(f"  {cost.cells} cells that train nothing: the dry run did their whole work")
    else:
        lines.append(f"  {cost.cells} cells × {cost.epochs} epochs × {cost.steps_per_epoch} steps per epoch"
                     + (f" (batch {cost.batch_size})" if cost.batch_size else "")
                     + f" = {cost.cells * cost.epochs * cost.steps_per_epoch:,} training steps")
    own = [n for n in cost.nets if n.net != "-" and (n.epochs, n.batch_size) != (cost.epochs, cost.batch_size)]
    if own:
        lines.append("  nets with their own budget (epochs × batch): "
                     + ", ".join(f"{n.net} {n.epochs} × {n.batch_size}" for n in own)
                     + f"; {sum(n.steps for n in cost.nets):,} training steps of the measured cells in all")
    if cost.measured_batch_size and cost.batch_size and cost.measured_batch_size != cost.batch_size:
        lines.append(f"  the steps were timed at batch {cost.measured_batch_size}, not the run's {cost.batch_size}: "
                     "this ETA is not the real run's")
    if cost.cells_measured < cost.cells:
        lines.append(f"  the dry run ran {cost.cells_measured} of the {cost.cells} cells: the ETA covers those")
    lines.append(f"  {'net':<24}{'cells':>6}{'steps':>12}   {'s/step (median, min–max)':<28}{'hours':>8}")
    for n in cost.nets:
        if n.net == "-":
            lines.append(f"  {'(no training)':<24}{n.cells:>6}{'-':>12}   {'-':<28}{n.seconds / 3600:>8.2f}")
            continue
        median, low, high = n.step_s
        lines.append(f"  {n.net:<24}{n.cells:>6}{n.steps:>12,}   {f'{median:.4f} ({low:.4f}–{high:.4f})':<28}"
                     f"{n.seconds / 3600:>8.2f}")
    if cost.epochs:
        lines.append(f"  ETA {_duration(cost.seconds)} of training steps on this machine; the per-epoch test passes, "
                     "checkpoints and model building come on top")
    else:
        lines.append(f"  ETA {_duration(cost.seconds)} on this machine (the dry run's own time)")
    return "\n".join(lines)


def _duration(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def covering_grid(scale):
    """A small grid that still takes every kind of value of every axis, for the contract test,
    which cannot afford every full-size cell on two CPU cores. Values that differ only in their
    numbers are one kind ('vgg16:shuffle:1' … 'vgg16:shuffle:13'; 'resnet152:none:0' is not
    'resnet50:none:0'). An axis of numbers alone (depth 2, 3, 5) keeps its first and last
    value, the ends of the figure's x axis; any other axis keeps the last value of each kind
    (the most modified variant: K = 13 of the shuffles)."""
    import re

    def kind(value):
        return ":".join(re.sub(r"^\d+(\.\d+)?$", "#", part) for part in str(value).split(":"))

    out = {}
    for axis, values in scale.grid.items():
        values = list(values)
        kinds = list(dict.fromkeys(kind(v) for v in values))
        if kinds == ["#"]:
            chosen = [values[0], values[-1]]
        else:
            chosen = [[v for v in values if kind(v) == k][-1] for k in kinds]
        out[axis] = [v for v in values if v in chosen]   # the grid's own order
    return out


def remove(run_dir):
    """Delete a dry run's folder and the temporary directory it made around it."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(run_dir)))
    if os.path.basename(top).startswith("spatialmix-dry-run-"):
        shutil.rmtree(top, ignore_errors=True)
