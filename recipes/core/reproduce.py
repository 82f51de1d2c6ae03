"""`spatialmix reproduce`: every recipe, one at a time, then the reproduction table and one
results page per paper.

    spatialmix reproduce                                  # cpu scale, every recipe: ./runs, ./docs
    spatialmix reproduce --only depth-strip,pixel-unshuffle --runs-dir /data/runs --docs /data/docs
    spatialmix reproduce --scale smoke                    # the whole path in minutes

Each recipe runs as `spatialmix run RECIPE --scale SCALE --runs-dir DIR` in a process of its
own (one heavy job at a time, a fresh process for each), on its scale's default data set. A
recipe whose run folder is finished (every cell has its row) is skipped; one that was
interrupted resumes from its last finished epoch, as `run` does. So the same command after a
Ctrl-C or a crash goes on where it stopped. A recipe that fails is reported and the others
still run (exit code 1 at the end).

Before each recipe it prints "recipe i of n" and an ETA: the recipe's time and that of the
whole remaining list, estimated by the budget rule from the step-time table
(recipes.core.budget; scales other than cpu have no table: no ETA). At the end it writes the
reproduction table (`DOCS/reproduction.md`, also printed) and the results pages
(`DOCS/paper-a.md`, `DOCS/paper-b.md`, figures in `DOCS/figures/`), as `spatialmix report
--docs DOCS` does.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

from recipes.core import budget, reproduction, runfolder
from recipes.core.choices import SCALES, default_backend
from zoo.errors import check_choice


@dataclasses.dataclass
class Step:
    """One recipe of a reproduction: where it runs and how far it is."""

    recipe: str
    dataset: str
    run_dir: str
    cells_total: int
    cells_done: int
    finished: bool
    eta_s: float | None


def parse_only(text):
    """--only 'ID,ID' -> [ids] in the given order; every id checked (one-line error)."""
    from recipes.core.registry import list_recipes

    ids = list_recipes()
    if text is None:
        return ids
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    for rid in chosen:
        check_choice("recipe in --only", rid, ids)
    return list(dict.fromkeys(chosen))


def plan(recipe_ids, scale, runs_dir, backend=None):
    """The steps of a reproduction: per recipe its run folder, cells done and the ETA."""
    from recipes.core.engine import cell_id, expand_grid
    from recipes.core.registry import get_recipe

    backend = backend or default_backend()
    steps = []
    for rid in recipe_ids:
        recipe = get_recipe(rid)
        sc = recipe.scales[scale]
        folder = runfolder.RunFolder(runfolder.run_dir_for(runs_dir, rid, scale, sc.dataset, 0))
        grid = {cell_id(c, s) for c, s in expand_grid(sc)}
        done = len(grid & {r.get("cell") for r in folder.rows()}) if os.path.isdir(folder.path) else 0
        finished = done == len(grid) and folder.status() == "finished"
        eta = None
        if scale == "cpu" and not finished:
            estimate = budget.declared_estimate_s(rid, sc.dataset, sc.budget_for(sc.dataset).get("epochs", 0), backend)
            if estimate is not None:
                eta = estimate * (1 - done / max(len(grid), 1))
            elif not sc.budget.get("epochs"):  # trains nothing (spectral-envelope): seconds
                eta = 0.0
        steps.append(Step(rid, sc.dataset, folder.path, len(grid), done, finished, eta))
    return steps


def format_eta(seconds):
    if seconds is None:
        return "unknown"
    return reproduction.format_wall(seconds)


def _remaining(steps, start):
    known = [s.eta_s for s in steps[start:] if not s.finished]
    if any(e is None for e in known):
        total = sum(e for e in known if e is not None)
        return f"≥ {format_eta(total)} (some recipes have no step times)" if total else "unknown"
    return format_eta(sum(known))


def run_one(step, scale, runs_dir, backend, quiet):
    """`spatialmix run` for one step in a child process; its exit code. Ctrl-C here reaches
    the child too (same process group); a SIGINT sent to this process alone is passed on."""
    argv = [sys.executable, "-m", "recipes.cli", "run", step.recipe, "--scale", scale, "--runs-dir", runs_dir]
    if backend:
        argv += ["--backend", backend]
    if quiet:
        argv.append("--quiet")
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        child.wait()
        raise


def reproduce(recipe_ids, scale="cpu", runs_dir="runs", docs_dir="docs", backend=None, quiet=False, out=print):
    """Run every recipe of `recipe_ids` (resuming), then write the docs. Returns the exit code."""
    check_choice("scale", scale, SCALES)
    runfolder.check_writable(runs_dir)
    reproduction.check_docs_dir(docs_dir)
    steps = plan(recipe_ids, scale, runs_dir, backend)
    source = budget.table()
    if scale == "cpu" and source.provisional:
        out("note: the step-time table (recipes/core/steptimes.json) is provisional "
            f"({'measured on a busy host' if source.data else 'missing'}): budgets and ETAs are not final; "
            "run `spatialmix bench --nets cpu` on a quiet host.")
    todo = [s for s in steps if not s.finished]
    out(f"spatialmix reproduce: {len(steps)} recipes at {scale} scale in {runs_dir} "
        f"({len(steps) - len(todo)} finished already); ETA {_remaining(steps, 0)} on {backend or default_backend()}")
    failed = []
    started = time.monotonic()
    for i, step in enumerate(steps, start=1):
        if step.finished:
            out(f"[{i}/{len(steps)}] {step.recipe}: finished ({step.cells_total} cells), skipped")
            continue
        resumed = f", resuming at {step.cells_done}/{step.cells_total} cells" if step.cells_done else ""
        out(f"[{i}/{len(steps)}] {step.recipe} ({scale}, {step.dataset}{resumed}): ETA {format_eta(step.eta_s)}; "
            f"this and the rest: {_remaining(steps, i - 1)}")
        t0 = time.monotonic()
        code = run_one(step, scale, runs_dir, backend, quiet)
        if code != 0:
            failed.append(f"{step.recipe} (exit {code})")
            out(f"[{i}/{len(steps)}] {step.recipe}: failed (exit {code}); going on with the others")
        else:
            out(f"[{i}/{len(steps)}] {step.recipe}: done in {reproduction.format_wall(time.monotonic() - t0)}")
    written = reproduction.write_docs(runs_dir, docs_dir)
    out("")
    out(reproduction.reproduction_table(runs_dir))
    out("")
    out(f"wall {reproduction.format_wall(time.monotonic() - started)}; written: "
        + ", ".join(os.path.relpath(p) for p in written if p.endswith(".md")) + f" (figures in {docs_dir}/figures)")
    if failed:
        out("failed: " + "; ".join(failed) + " (see their run folders' events.jsonl; rerun to retry)")
        return 1
    return 0
