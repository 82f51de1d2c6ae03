"""single-layer-shuffle: paper B, App. A.3, Fig. 6. VGG-16 with Shuffle Conv at one conv
layer only (`single_layer` = its index, 1..13, 13 the last), at training and test time.
Paper (CIFAR-100): the baseline is kept for the last 4 layers and accuracy falls towards
the first layers (≈20 % at layer 1). Claim: late layers tolerate shuffling, early ones not.

Grid: `layer` (0 = the baseline).

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): layers {1, 4, 7, 10, 13}
and the baseline, 2 seeds: 12 trainings; one shuffled evaluation of the test split per model
(the shuffle is drawn afresh per batch); model, data and budget as every paper B cpu recipe
(_common.py).

Check (fixed before any run): the last layer (13) within tol of the baseline
(a larger drop beyond the spread: does not hold), and the first layer (1) more than tol
below the baseline beyond the spread (within tol: does not hold), and layer 1 below layer 13
beyond the spread.

tol is 1 point at paper scale (the paper's "within 1%"), 2 at cpu scale; SGD's weight decay
is coupled L2 (recipes.core.train), from the next cpu run on.

Paper scale: VGG-16-BN on CIFAR-100, shuffle at each of the 13 layers, weiaicunzai's
CIFAR-100 recipe (_common.PAPER_REFERENCE). Seeds at paper scale: 1 (seed 0), as the paper
(see _common.py).

Remaining departures from the text: the paper keeps the baseline "for the last 4 layers";
the check reads the two ends (layer 13 and layer 1), not where the drop begins.

Runbook:
    spatialmix run single-layer-shuffle              # cpu scale
    spatialmix run single-layer-shuffle --scale paper --data-dir ~/tensorflow_datasets   # CIFAR-100

Expected at cpu scale: see docs/paper-b.md
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c


# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("single-layer-shuffle")

THRESHOLDS = c.thresholds('tol')

SCALES = {
    "smoke": Scale(dataset="textures", grid={"layer": [0, 13]}, seeds=(0,), model={"vgg16": c.VGG["smoke"]},
                   budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures", grid={"layer": [0, 1, 4, 7, 10, 13]}, seeds=(0, 1),
                 model={"vgg16": c.VGG["cpu"]}, budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32, VGG-16 at 1/8 width, shuffle at layer 1, 4, 7, 10 or 13 "
                      "(a subset of the paper's 1..13)."),
    "paper": Scale(dataset="cifar100", grid={"layer": list(range(0, 14))}, seeds=(0,),
                   model={"vgg16": c.VGG["paper"]}, budget=c.PAPER_BUDGET, datasets=("imagenet_resized/32x32",),
                   note="paper scale: VGG-16-BN on CIFAR-100, shuffle at each of the 13 layers."),
}


def run_cell(cell):
    layer = int(cell.config["layer"])
    config = c.model_config(cell, "vgg16")
    if layer:
        config.update(spatial_method="shuffle", single_layer=layer)
    return c.train(cell, "vgg16", config)


def check(rows, t=THRESHOLDS.at()):
    chance = 1 / c.num_classes(rows)  # a baseline at chance has nothing to lose
    stats = claims.arms(rows, "test_accuracy", ("layer",))
    base, first, last = stats.get(("0",)), stats.get(("1",)), stats.get(("13",))
    table = claims.markdown_table(["layer", "top-1"], [[("baseline" if k == "0" else k), c.fmt(v)]
                                                       for (k,), v in sorted(stats.items(), key=lambda kv: int(kv[0][0]))])
    if not (base and first and last):
        return claims.Finding(claims.INCONCLUSIVE, "the baseline, layer 1 and layer 13 are not all finished yet.", table)
    late = claims.within(base, last, t.tol, chance=chance)
    early = claims.beats(base, first, t.tol)
    order = claims.beats(last, first)
    summary = (f"Test accuracy, mean ± spread over seeds. Layer 13 − baseline {100 * (last[0] - base[0]):+.1f} pts "
               f"(tolerates, within {100 * t.tol:.0f}: {late}); layer 1 − baseline {100 * (first[0] - base[0]):+.1f} "
               f"pts (does not tolerate: {early}); layer 13 above layer 1: {order}. Paper: baseline kept for the "
               f"last 4 layers, ≈20 % at layer 1 (CIFAR-100).")
    return claims.Finding(claims.combine([late, early, order]), summary, table)


def figure(rows, path, meta):
    stats = claims.arms(rows, "test_accuracy", ("layer",))
    base = stats.get(("0",))
    c.line_figure(path, {"shuffle conv": [(int(k), v) for (k,), v in stats.items() if k != "0"]},
                  title=f"VGG16 Shuffle Single Layer on {meta['dataset']} (Fig. 6)", xlabel="layer index",
                  hline=("vanilla", base[0]) if base else None, xticks=list(range(1, 14)), invert_x=True)


RECIPE = Recipe(
    id="single-layer-shuffle",
    title="VGG-16 with Shuffle Conv at a single layer",
    paper="B, App. A.3, Fig. 6",
    claim="Shuffling a single late layer of VGG-16 keeps the baseline accuracy; shuffling an early layer costs "
          "much more (late layers tolerate the loss of spatial order, early layers do not).",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
