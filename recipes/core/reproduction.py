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

A classifier that never learned cannot show a paper's effect: where a classification
recipe's baseline (its unmodified net, `baseline_rows`) stays below CHANCE_FLOOR × chance,
the verdict column says "untrained" and names it, and the check's verdict is shown beside
it, not as the result.

`write_docs(runs_dir, docs_dir)` writes the same table (`reproduction.md`) and one results
page per paper (`paper-a.md`, `paper-b.md`): per recipe and run folder its report (the
claim, the verdict, the check's table, model and budget), its wall time and its figure,
copied into `figures/` beside the pages (`spatialmix report --docs DIR`, `spatialmix reproduce`).
"""

import importlib
import os
import shutil

from recipes.core import claims, runfolder
from recipes.core.budget import CHANCE_FLOOR
from recipes.core.choices import SCALES
from zoo.errors import SpatialmixError, check

NOT_RUN = "not run"
UNTRAINED = "untrained"
# A row is a baseline when each of these grid columns it has holds one of these values: the
# unmodified net (paper B: method none, K 0; paper A: full mode, learned or random filters,
# standard training). A recipe module can define `is_baseline(row)` instead.
BASELINE_VALUES = {"method": ("none",), "k": ("0",), "train_k": ("0",), "strip": ("0",), "layer": ("0",),
                   "mode": ("full",), "filters": ("full", "random"), "training": ("standard",)}


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


# ---------------------------------------------------------------------------- untrained baselines

def accuracy_column(rows):
    """The clean test accuracy column of a classification recipe's rows, or None."""
    for column in ("test_accuracy", "test_clean"):
        if rows and all(r.get(column) not in (None, "") for r in rows):
            return column
    return None


def is_baseline(recipe, row):
    """Is `row` one of the recipe's baselines (BASELINE_VALUES, or the module's `is_baseline`)?"""
    from recipes.core.registry import recipe_module

    custom = getattr(importlib.import_module(recipe_module(recipe.id)), "is_baseline", None)
    if custom is not None:
        return bool(custom(row))
    row = dict(row)
    if row.get("arm") not in (None, ""):  # paper B's 'net:method:k[:extra]' grid values
        parts = str(row["arm"]).split(":")
        row.setdefault("method", parts[1] if len(parts) > 1 else "")
        row.setdefault("k", parts[2] if len(parts) > 2 else "")
    return all(str(row[k]) in allowed for k, allowed in BASELINE_VALUES.items() if row.get(k) not in (None, ""))


def untrained_baselines(recipe, meta, rows):
    """[(baseline label, mean accuracy, floor)] of the recipe's classification baselines whose
    mean over seeds is below CHANCE_FLOOR × chance (empty for a recipe that classifies nothing)."""
    from recipes.core import data

    column = accuracy_column(rows)
    if column is None:
        return []
    try:
        classes = data.dataset_spec(meta.get("dataset")).num_classes
    except SpatialmixError:
        return []
    if not classes:
        return []
    floor = CHANCE_FLOOR / classes
    scale = recipe.scales.get(meta.get("scale"))
    axes = tuple(a for a in (scale.grid if scale else {}) if all(a in r for r in rows))
    baselines = [r for r in rows if is_baseline(recipe, r)]
    out = []
    for key, (mean, _, _) in claims.arms(baselines, column, axes).items():
        if mean < floor:
            label = ", ".join(f"{a}={v}" for a, v in zip(axes, key)) or "every cell"
            out.append((label, mean, floor))
    return out


def untrained_text(untrained):
    if not untrained:
        return ""
    floor = untrained[0][2]
    which = "; ".join(f"{label} {100 * mean:.1f} %" for label, mean, _ in untrained)
    return f"{UNTRAINED}: baseline below {CHANCE_FLOOR:g}× chance ({100 * floor:.1f} %): {which}"


def wall_seconds(folder):
    """The run's wall seconds, summed over its invocations (run_end events), or None."""
    ends = [e.get("wall_s") for e in folder.events().events if e.get("event") == "run_end"]
    ends = [float(w) for w in ends if w is not None]
    return sum(ends) if ends else None


def format_wall(seconds):
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def recipe_row(recipe, runs_dir):
    """The table row of one recipe: [claim, paper, the paper's claim, run, cells, wall, seeds, ours, verdict]."""
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
            untrained = untrained_text(untrained_baselines(recipe, meta, rows))
            if untrained:
                verdict = f"**{untrained}** (the check says: {verdict})"
            ours = headline(recipe, rows)
            if len(rows) < total:
                verdict += f" (so far, {len(rows)}/{total} cells)"
        else:
            verdict, ours = f"{NOT_RUN} (folder has no results yet)", "no results yet"
        entries.append((where, cells, format_wall(wall_seconds(folder)), seeds, ours, verdict))
    if not entries:
        entries = [(NOT_RUN, NOT_RUN, "–", "–", NOT_RUN, NOT_RUN)]
    columns = list(zip(*entries))
    return [f"`{recipe.id}`", recipe.paper, recipe.claim, *("<br>".join(c) for c in columns)]


HEADER = ["claim", "paper", "the paper's claim", "run (scale · data · backend)", "cells", "wall", "seeds", "ours",
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


# ---------------------------------------------------------------------------- the docs pages

PAGES = {"paper_a": "paper-a.md", "paper_b": "paper-b.md"}
TABLE_PAGE = "reproduction.md"
FIGURES = "figures"


def check_docs_dir(docs_dir):
    """Fail early, writing nothing, if the docs dir cannot be created or written."""
    try:
        runfolder.check_writable(docs_dir)
    except SpatialmixError as error:
        raise SpatialmixError(str(error).replace("runs dir", "docs dir").replace("--runs-dir", "--docs")) from None


def paper_title(paper):
    """The paper package's docstring up to ': one module' (e.g. 'Paper A, "Rethinking …" (…)')."""
    doc = importlib.import_module(f"recipes.{paper}").__doc__ or paper
    return " ".join(doc.split(": one module")[0].split())


def run_section(recipe, folder, meta, figure_name, runs_dir):
    """One run folder's part of a results page: its report as report.md shows it (headings one
    level down), the untrained note, the wall time and the figure."""
    from recipes.core.engine import render_report

    rows, total, state = run_state(folder, recipe, meta)
    where = f"{meta.get('scale')} · {meta.get('dataset')} · {meta.get('backend')}"
    lines = [f"### {where}", ""]
    if not rows:
        return lines + [f"{NOT_RUN} (folder has no results yet).", ""]
    scale = recipe.scales[meta["scale"]]
    finding = claims.judge(recipe, meta["scale"], rows)
    report = render_report(recipe, scale, meta, rows, finding, folder.frozen_verdict())
    body = report.splitlines()[2:]  # the report's own title is the recipe's section title
    untrained = untrained_text(untrained_baselines(recipe, meta, rows))
    lines.append(f"{len(rows)}/{total} cells ({state}), wall {format_wall(wall_seconds(folder))}, run folder "
                 f"`{os.path.join(runs_dir, os.path.relpath(folder.path, os.path.abspath(runs_dir)))}`.")
    if untrained:
        lines += ["", f"**{untrained[0].upper() + untrained[1:]}.** The check's verdict below is not a result."]
    lines += ["", *("#" + line if line.startswith("#") else line for line in body)]
    if figure_name:
        lines += [f"![{recipe.id}, {where}]({FIGURES}/{figure_name})", ""]
    return lines


def results_page(paper, runs_dir, figures):
    """The markdown page of one paper's recipes; `figures` collects {figure name: source path}."""
    from recipes.core.registry import get_recipe, list_recipes, recipe_module

    lines = [f"# {paper_title(paper)}: results", "",
             f"Written by `spatialmix report --docs` from the run folders under `{runs_dir}`: per recipe and "
             "run, the paper's claim, the verdict, the check's table, model and budget, the wall time and the "
             f"figure. A classification baseline below {CHANCE_FLOOR:g}× chance is marked untrained.", ""]
    for rid in list_recipes():
        if not recipe_module(rid).startswith(f"recipes.{paper}."):
            continue
        recipe = get_recipe(rid)
        lines += [f"## `{rid}`: {recipe.title}", "", f"Paper {recipe.paper}. **The paper's claim:** {recipe.claim}", ""]
        found = run_folders(runs_dir, rid)
        if not found:
            lines += [f"{NOT_RUN}.", ""]
        for folder, meta in found:
            name = None
            if os.path.exists(folder.figure_path):
                name = f"{rid}-{meta.get('scale')}-{str(meta.get('dataset')).replace('/', '_')}.png"
                figures[name] = folder.figure_path
            lines += run_section(recipe, folder, meta, name, runs_dir)
    return "\n".join(lines).rstrip() + "\n"


def write_docs(runs_dir, docs_dir):
    """The reproduction table and one results page per paper into `docs_dir`, figures in
    `docs_dir/figures/`; every file swapped in whole. Returns the paths written."""
    runfolder.check_runs_dir(runs_dir)
    check_docs_dir(docs_dir)
    figures, pages = {}, {TABLE_PAGE: reproduction_table(runs_dir) + "\n"}
    for paper, name in PAGES.items():
        pages[name] = results_page(paper, runs_dir, figures)
    for name in (*pages, FIGURES):
        kind = "file" if name == FIGURES else "folder"
        path = os.path.join(docs_dir, name)
        check(not os.path.exists(path) or (os.path.isdir(path) if kind == "file" else os.path.isfile(path)),
              f"docs dir {docs_dir!r} has a {kind} named {name} where spatialmix writes its pages; pass --docs DIR")
    os.makedirs(os.path.join(docs_dir, FIGURES), exist_ok=True)
    written = []
    for name, source in figures.items():
        target = os.path.join(docs_dir, FIGURES, name)
        tmp = runfolder.temp_path(target)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        written.append(target)
    for name, text in pages.items():
        path = os.path.join(docs_dir, name)
        runfolder.atomic_write_text(path, text)
        written.append(path)
    return written
