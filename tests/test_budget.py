"""The cpu budget rule (recipes.core.budget) and the committed step-time table it reads.

- The rule's arithmetic, on hand-made tables: a cell's seconds, the epochs that fit the
  share, the caps, the custom-loop factor, a recipe without times.
- Every recipe that trains at cpu scale: the table covers exactly its current grid (else
  the bench must run again), and its epochs are the rule's, for paper A and paper B alike.
- Every recipe fits its 10 minutes and all of them 2 hours: read off the table, so only
  when the table was measured on a quiet host (it says why it skips otherwise).
"""

import pytest

from recipes.core import budget
from recipes.core.engine import expand_grid
from recipes.core.registry import get_recipe, list_recipes
from recipes.perf.bench.nets import cell_key


def hand_table(step_ms=100.0, steps=20, seeds=2, cells=3, loop="fit", eval_batches=0, **times):
    net_times = {"step_ms": step_ms, "eval_ms": 50.0, "build_s": 1.0, "first_step_s": 2.0, "first_eval_s": 0.5,
                 "save_s": 0.2, **times}
    entries = {f"k={i}": {"net": "net.a", "seeds": seeds, "steps_per_epoch": steps, "eval_batches_per_epoch": eval_batches,
                          "test_batches": 4, "loop": loop} for i in range(cells)}
    return budget.StepTable({"measured": {"quiet": True, "quick": False},
                             "nets": {"net.a": {"backends": {"torch": net_times}}},
                             "recipes": {"r": {"d": {"cells": entries}}}})


def test_a_cells_seconds_are_its_overheads_plus_its_epochs():
    table = hand_table()
    entry, times = table.cells("r", "d")["k=0"], table.times("net.a", "torch")
    fixed = 1.0 + 2.0 + 0.5 + 4 * 0.05 + 0.2          # build, first step, first test batch, final test, export
    per_epoch = 20 * 0.1 + 0.2                           # the steps and one checkpoint
    assert budget.cell_seconds(entry, times, 0) == pytest.approx(fixed)
    assert budget.cell_seconds(entry, times, 3) == pytest.approx(fixed + 3 * per_epoch)
    assert budget.cell_seconds(entry, times, 1, extra_steps=10) == pytest.approx(fixed + per_epoch + 1.0)
    validated = hand_table(eval_batches=6)
    assert budget.cell_seconds(validated.cells("r", "d")["k=0"], times, 1) == pytest.approx(fixed + per_epoch + 0.3)
    custom = hand_table(loop="custom")   # FGSM adversarial training: an input-gradient pass per step
    assert budget.cell_seconds(custom.cells("r", "d")["k=0"], times, 1) == pytest.approx(fixed + 20 * 0.2 + 0.2)


def test_rule_epochs_are_the_most_that_fit_the_share_within_the_caps():
    table = hand_table()
    fixed, per_epoch = 6 * (1.0 + 2.0 + 0.5 + 0.2 + 0.2), 6 * 2.2       # 3 cells x 2 seeds
    fit = int((budget.SHARE_S - fixed) // per_epoch)                      # 39
    assert budget.rule_epochs("r", "d", 100, source=table) == fit
    assert budget.rule_epochs("r", "d", 8, source=table) == 8            # the recipe's own choice caps it
    assert budget.estimate_s("r", "d", fit, source=table) <= budget.SHARE_S < budget.estimate_s("r", "d", fit + 1,
                                                                                                source=table)
    assert budget.rule_epochs("r", "d", 100, extra_s=300, source=table) == int((budget.SHARE_S - 300 - fixed)
                                                                               // per_epoch)
    slow = hand_table(step_ms=10_000.0)
    assert budget.rule_epochs("r", "d", 8, source=slow) == 1             # nothing fits: still one epoch
    assert budget.rule_epochs("r", "d", 8, min_epochs=3, source=slow) == 3
    assert budget.rule_epochs("r", "d", 8, backend="jax", source=table) is None   # no times on jax
    assert budget.rule_epochs("other", "d", 8, source=table) is None and budget.estimate_s("other", "d", 1,
                                                                                           source=table) is None


def test_a_table_is_provisional_unless_measured_quietly_in_full():
    assert budget.StepTable({}).provisional
    assert not budget.StepTable({"measured": {"quiet": True, "quick": False}}).provisional
    assert budget.StepTable({"measured": {"quiet": False, "quick": False}}).provisional
    assert budget.StepTable({"measured": {"quiet": True, "quick": True}}).provisional


# ---------------------------------------------------------------------------- the committed table


@pytest.fixture(scope="module")
def declared():
    for rid in list_recipes():
        get_recipe(rid)   # each recipe module declares its budget to the rule on import
    return dict(budget.DECLARED)


def test_every_recipe_that_trains_at_cpu_scale_declares_its_budget_to_the_rule(declared):
    trains = {rid for rid in list_recipes() if get_recipe(rid).scales["cpu"].budget.get("epochs")}
    assert {rid for rid, _ in declared} == trains
    for rid, dataset in declared:
        scale = get_recipe(rid).scales["cpu"]
        assert dataset == scale.dataset or "budget" in scale.overrides.get(dataset, {}), (rid, dataset)


def test_the_table_covers_each_recipes_own_grid(declared):
    table = budget.table()
    missing = sorted(budget.MISSING)
    assert not missing, f"no step times for {missing}: run `spatialmix bench --nets cpu --recipes ID`"
    for rid, dataset in declared:
        scale = get_recipe(rid).scales["cpu"]
        seeds = {}
        for config, _ in expand_grid(scale):
            seeds[cell_key(config)] = seeds.get(cell_key(config), 0) + 1
        cells = table.cells(rid, dataset)
        assert {k: c["seeds"] for k, c in cells.items()} == seeds, (
            f"{rid} on {dataset}: its grid is not the one the table was measured for; run "
            f"`spatialmix bench --nets cpu --recipes {rid}`")
        for entry in cells.values():
            assert table.times(entry["net"], budget.DEFAULT_BACKEND)["step_ms"] > 0


def test_each_recipes_cpu_epochs_follow_the_rule_for_its_own_grid(declared):
    for (rid, dataset), rule in declared.items():
        epochs = get_recipe(rid).scales["cpu"].budget_for(dataset)["epochs"]
        assert epochs == budget.rule_epochs(rid, dataset, rule["max_epochs"], rule["min_epochs"],
                                            extra_steps=rule["extra_steps"], extra_s=rule["extra_s"]), (rid, dataset)
        assert rule["min_epochs"] <= epochs <= rule["max_epochs"]


def test_every_recipe_fits_ten_minutes_and_all_fit_two_hours(declared):
    table = budget.table()
    if table.provisional:
        pytest.skip("the step-time table is provisional (measured on a busy host or with --quick): run "
                    "`spatialmix bench --nets cpu` on a quiet host to check the time limits")
    total = 0.0
    for (rid, dataset), rule in declared.items():
        scale = get_recipe(rid).scales["cpu"]
        seconds = budget.declared_estimate_s(rid, dataset, scale.budget_for(dataset)["epochs"])
        assert seconds <= 600 - 60, f"{rid} on {dataset}: {seconds:.0f} s by the table"
        if dataset == scale.dataset:
            total += seconds
    assert total <= 2 * 3600 - 19 * 60, f"all recipes: {total / 60:.0f} min by the table"
