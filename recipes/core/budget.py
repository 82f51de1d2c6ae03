"""The cpu-scale budget rule: how many epochs a recipe's cells train, read off the step-time
table that `spatialmix bench --nets cpu` writes (`recipes/core/steptimes.json`, committed).

    from recipes.core import budget
    CPU_BUDGET = budget.cpu_budget(base, "depth-strip", "textures", max_epochs=8)
    budget.estimate_s("depth-strip", "textures", epochs=6)   # seconds on the default backend
    budget.table().quiet                                       # was the host quiet when it was measured?

One rule for every recipe. A cell costs, at the table's times on the default backend:

    build and compile + first step + first test pass + final test pass + export
    + epochs × (steps × step time × loop factor + validation batches × test-batch time + checkpoint)
    + extra steps × step time                      (other work the recipe states, e.g. attacks)

The recipe's cells (every seed) share SHARE_S seconds; its epochs are the most that fit,
at most `max_epochs` (the recipe's own choice: paper B's common cap, paper A's scaled-down
schedule) and at least `min_epochs`. The table maps each cell of each recipe's cpu grid to
the net it trains (found by running the recipe's own cell code up to its training, see
recipes/perf/bench/nets.py), so the rule needs no hand-kept list of nets; a test checks that
the table covers every recipe's current grid.

Every classification baseline at cpu scale should reach CHANCE_FLOOR × chance; one that does
not is "untrained", and `spatialmix report` / `reproduce` say so instead of a verdict.
"""

from __future__ import annotations

import functools
import json
import math
import os

from recipes.core.choices import DEFAULT_BACKEND

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steptimes.json")

# A recipe at cpu scale must finish in 10 minutes on a quiet 2-core host. Its cells share 9 of
# them: the last minute is the margin for what the table does not time (process start and
# imports, the tf.data pipeline feeding each step, the figure and the report).
SHARE_S = 540.0
# A baseline that does not reach 3× chance (21 % on the 14 textures classes) has not learned
# enough for a claim about what the modified nets lose against it.
CHANCE_FLOOR = 3.0
# A training loop of its own (FGSM adversarial training) takes an input-gradient pass, about
# one training step, before every step: it counts as 2 steps of its net.
CUSTOM_LOOP_FACTOR = 2.0

# (recipe id, dataset) -> the rule's inputs, as each recipe module declared them at import
DECLARED: dict = {}
# (recipe id, dataset) pairs the table has no step times for (tests/test_budget.py fails on them)
MISSING: set = set()


class StepTable:
    """The step-time table: its header (`measured`), nets with their times per backend, and
    every recipe's cells (per data set) with the net each trains."""

    def __init__(self, data, path=None):
        self.data = data or {}
        self.path = path

    @property
    def measured(self):
        return self.data.get("measured", {})

    @property
    def quiet(self):
        return bool(self.measured.get("quiet")) and not self.measured.get("quick")

    @property
    def provisional(self):
        """Not a quiet, full measurement: budgets read from it are not final."""
        return not self.data or not self.quiet

    def backends(self):
        return sorted({b for net in self.data.get("nets", {}).values() for b in net.get("backends", {})})

    def cells(self, recipe_id, dataset):
        """{cell id without seed: entry} of a recipe's grid on `dataset`, or None."""
        return self.data.get("recipes", {}).get(recipe_id, {}).get(dataset, {}).get("cells")

    def times(self, net, backend):
        """The measured times of `net` on `backend` ({step_ms, eval_ms, build_s, ...}) or None."""
        return self.data.get("nets", {}).get(net, {}).get("backends", {}).get(backend)


@functools.lru_cache(maxsize=None)
def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def table(path=None):
    """The committed table (or the one at `path`); empty if there is none."""
    path = path or TABLE_PATH
    return StepTable(_read(os.path.abspath(path)), path)


def cell_seconds(entry, times, epochs, extra_steps=0.0):
    """Seconds of one cell (one seed) of table entry `entry` at `times` for `epochs`."""
    step = times["step_ms"] / 1000.0
    evaluate = times.get("eval_ms", 0.0) / 1000.0
    factor = CUSTOM_LOOP_FACTOR if entry.get("loop") == "custom" else 1.0
    fixed = (times.get("build_s", 0.0) + times.get("first_step_s", 0.0) + times.get("first_eval_s", 0.0)
             + entry.get("test_batches", 0) * evaluate + times.get("save_s", 0.0) + extra_steps * step)
    per_epoch = (entry["steps_per_epoch"] * step * factor + entry.get("eval_batches_per_epoch", 0) * evaluate
                 + times.get("save_s", 0.0))
    return fixed + epochs * per_epoch


def _fixed_and_per_epoch(cells, backend, source, extra_steps):
    """(fixed seconds, seconds per epoch) of every cell and seed; None if a net lacks times."""
    fixed = per_epoch = 0.0
    for entry in cells.values():
        times = source.times(entry["net"], backend)
        if times is None:
            return None
        zero = cell_seconds(entry, times, 0, extra_steps)
        fixed += entry.get("seeds", 1) * zero
        per_epoch += entry.get("seeds", 1) * (cell_seconds(entry, times, 1, extra_steps) - zero)
    return fixed, per_epoch


def estimate_s(recipe_id, dataset, epochs, backend=DEFAULT_BACKEND, *, extra_steps=0.0, extra_s=0.0, source=None):
    """Seconds the recipe's cells take at `epochs` on `backend` by the table; None if unknown."""
    source = source or table()
    cells = source.cells(recipe_id, dataset)
    if not cells:
        return None
    parts = _fixed_and_per_epoch(cells, backend, source, extra_steps)
    if parts is None:
        return None
    fixed, per_epoch = parts
    return extra_s + fixed + epochs * per_epoch


def rule_epochs(recipe_id, dataset, max_epochs, min_epochs=1, *, extra_steps=0.0, extra_s=0.0,
                backend=DEFAULT_BACKEND, source=None):
    """The most epochs (between min_epochs and max_epochs) whose estimate fits SHARE_S; None if
    the table has no times for this recipe on `backend`."""
    source = source or table()
    cells = source.cells(recipe_id, dataset)
    parts = _fixed_and_per_epoch(cells, backend, source, extra_steps) if cells else None
    if parts is None:
        return None
    fixed, per_epoch = parts
    fit = math.floor((SHARE_S - extra_s - fixed) / per_epoch) if per_epoch > 0 else max_epochs
    return int(max(min_epochs, min(max_epochs, fit)))


def cpu_budget(base, recipe_id, dataset, *, max_epochs=None, min_epochs=1, extra_steps=0.0, extra_s=0.0):
    """`base` (a cpu budget dict) with the rule's epochs for `recipe_id`'s grid on `dataset`.

    `max_epochs` (default: base["epochs"]) is the recipe's own choice, the rule only lowers it
    to fit; `extra_steps` is other work per cell in training steps of its net (attacks: a
    gradient pass over a batch of 256 is about 2 steps of 128); `extra_s` other seconds of
    the whole recipe. Without step times for the recipe the budget gets `min_epochs` and the
    recipe is listed in MISSING (run `spatialmix bench --nets cpu --recipes ID`)."""
    max_epochs = int(base["epochs"] if max_epochs is None else max_epochs)
    DECLARED[recipe_id, dataset] = {"max_epochs": max_epochs, "min_epochs": int(min_epochs),
                                    "extra_steps": float(extra_steps), "extra_s": float(extra_s)}
    epochs = rule_epochs(recipe_id, dataset, max_epochs, min_epochs, extra_steps=extra_steps, extra_s=extra_s)
    if epochs is None:
        MISSING.add((recipe_id, dataset))
        epochs = int(min_epochs)
    else:
        MISSING.discard((recipe_id, dataset))
    return {**base, "epochs": epochs}


def declared_estimate_s(recipe_id, dataset, epochs, backend=DEFAULT_BACKEND, source=None):
    """estimate_s with the extras the recipe declared in its cpu_budget call."""
    declared = DECLARED.get((recipe_id, dataset), {})
    return estimate_s(recipe_id, dataset, epochs, backend, extra_steps=declared.get("extra_steps", 0.0),
                      extra_s=declared.get("extra_s", 0.0), source=source)
