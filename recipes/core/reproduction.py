"""The reproduction table: one row per claim (= per registered recipe), read from run folders.

    from recipes.core.reproduction import reproduction_table
    print(reproduction_table("runs"))          # what `spatialmix report` prints

Each row gives the paper's figure and claim, then one entry per run folder of the recipe
found under `<runs-dir>/<recipe id>/` (ordered smoke, cpu, paper): where it ran (scale ·
dataset · backend), how many cells have results out of the grid (and the run's state if
it is not finished), the seeds, our numbers, and the verdict: the one frozen when the run
finished (verdict.json), beside today's check where that says something else, with the
reason (a threshold, the check's code, or the rows changed). A run still going shows
today's check on the rows so far. A recipe with no run folder shows "not run", never a
blank.

It is generic over the recipe registry: a recipe added later gets its row by existing.
Our numbers are the recipe module's `headline(rows)` if it defines one, else the mean ±
spread over seeds of the recipe's metric for every grid point (seeds pooled).
"""

import importlib

from recipes.core import claims, runfolder
from recipes.core.choices import SCALES

NOT_RUN = "not run"


def run_folders(runs_dir, recipe_id):
    """The run folders of `recipe_id` under `runs_dir` (those with a run.json), smoke → cpu → paper:
    [(RunFolder, meta)]."""
    order = {s: i for i, s in enumerate(SCALES)}
    found = runfolder.recipe_folders(runs_dir, recipe_id)
    return sorted(found, key=lambda m: (order.get(m[1].get("scale"), len(order)), m[0].path))


def run_state(folder, recipe, meta):
    """(rows, cells_total, state) of one run folder; state as `runfolder.last_status`."""
    from recipes.core.engine import expand_grid

    rows = folder.rows()
    scale = recipe.scales.get(meta.get("scale"))
    total = len(expand_grid(scale, meta.get("seed", 0))) if scale else len(rows)
    return rows, total, folder.status()


def training_text(folder, state):
    """The cells a run that has not ended is training now, from the merged logs (a Ray run's
    cells write their epochs to their own logs): 'full,depth=1: epoch 1/2 on host GPU 0; ...',
    or '' when none is (or the run has ended)."""
    if state != "running or killed":
        return ""
    return "; ".join(f"{p.cell}: epoch {p.epoch}/{p.epochs or '?'}" + (f" on {p.where}" if p.where else "")
                     for p in folder.cell_progress().values() if p.state == "training")


def placement_text(folder):
    """Where a Ray run's cells ran, with how many each: 'host GPU 0 (2 cells), host GPU 1 (1 cell)';
    '' for a run whose cells trained in its own process."""
    counts = {}
    for progress in folder.cell_progress().values():
        if progress.state == "done" and progress.where:
            counts[progress.where] = counts.get(progress.where, 0) + 1
    return ", ".join(f"{where} ({n} cell{'s' if n != 1 else ''})" for where, n in sorted(counts.items()))


def verdict_text(recipe, folder, meta, rows):
    """The verdict a run folder shows: the frozen one (verdict.json) and, where today's check
    says something else, both, with why. A run that has not finished shows today's check on
    the rows so far; a finished run from before frozen verdicts says it is not frozen."""
    current = claims.judge(recipe, meta["scale"], rows).verdict
    frozen = folder.frozen_verdict()
    if frozen is None:
        return f"{current} (not frozen)"
    if frozen["verdict"] == str(current):
        return frozen["verdict"]
    why = "; ".join(claims.differences(frozen, recipe, meta["scale"], rows)) or "unknown"
    return f"{frozen['verdict']} (frozen); today's check: {current} ({why})"


def default_headline(recipe, rows):
    """Mean ± spread of the recipe's metric at every grid point, seeds pooled."""
    axes = [a for a in _grid_axes(recipe, rows) if a in (rows[0] if rows else {})]
    stats = claims.arms(rows, recipe.metric, tuple(axes))
    if not stats:
        return "no results yet"
    percent = "accuracy" in recipe.metric
    parts = []
    for key, arm in stats.items():
        value = claims.pct(arm) if percent else f"{arm[0]:.3g} ± {arm[1]:.2g}"
        parts.append(f"{'/'.join(key)} {value}")
    return f"{recipe.metric} by {'/'.join(axes)}: " + ", ".join(parts)


def _grid_axes(recipe, rows):
    axes = []
    for scale in recipe.scales.values():
        for axis in scale.grid:
            if axis not in axes:
                axes.append(axis)
    return axes


def headline(recipe, rows):
    """Our numbers: the recipe module's `headline(rows)` if it has one, else the default."""
    from recipes.core.registry import recipe_module

    custom = getattr(importlib.import_module(recipe_module(recipe.id)), "headline", None)
    return custom(rows) if custom else default_headline(recipe, rows)


def recipe_row(recipe, runs_dir):
    """The table row of one recipe: [claim, paper, the paper's claim, run, cells, seeds, ours, verdict]."""
    entries = []
    for folder, meta in run_folders(runs_dir, recipe.id):
        rows, total, state = run_state(folder, recipe, meta)
        where = f"{meta.get('scale', '?')} · {meta.get('dataset', '?')} · {meta.get('backend', '?')}"
        training = training_text(folder, state)
        cells = f"{len(rows)}/{total}" + ("" if state == "finished" and len(rows) >= total else
                                          f" ({state}{'; training ' + training if training else ''})")
        seeds = ", ".join(str(s) for s in sorted({int(r["seed"]) for r in rows})) or "–"
        if rows:
            verdict = verdict_text(recipe, folder, meta, rows)
            ours = headline(recipe, rows)
            if len(rows) < total:
                verdict += f" (so far, {len(rows)}/{total} cells)"
        else:
            verdict, ours = f"{NOT_RUN} (folder has no results yet)", "no results yet"
        entries.append((where, cells, seeds, ours, verdict))
    if not entries:
        entries = [(NOT_RUN, NOT_RUN, "–", NOT_RUN, NOT_RUN)]
    columns = list(zip(*entries))
    return [f"`{recipe.id}`", recipe.paper, recipe.claim, *("<br>".join(c) for c in columns)]


HEADER = ["claim", "paper", "the paper's claim", "run (scale · data · backend)", "cells", "seeds", "ours",
          "verdict"]


def reproduction_table(runs_dir):
    """The reproduction table (markdown) of every registered recipe, from `runs_dir`."""
    from recipes.core.registry import get_recipe, list_recipes

    runfolder.check_runs_dir(runs_dir)

    rows = [recipe_row(get_recipe(rid), runs_dir) for rid in list_recipes()]
    body = claims.markdown_table(HEADER, [[_cell(c) for c in r] for r in rows])
    return (f"Reproduction table, from the run folders under `{runs_dir}` "
            f"(`spatialmix report --runs-dir {runs_dir}`). Numbers are mean ± spread (sample std) over seeds.\n\n"
            + body)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")
