"""channel-shuffle: paper B, App. A.6, Fig. 10. VGG-16 with a random permutation of the
channel order (fresh every forward pass, training and test) before each of its last K
convs, against the spatial Shuffle Conv at the same K. Paper (CIFAR-100): 74.10 % falls to
71.49 % with only the last layer channel-shuffled, and "the test accuracy drops much faster
than that from random spatial shuffle" as K grows. Claim: channel order matters far more
than spatial order.

Grid: `arm` = 'vgg16:method:k' with method shuffle | channel_shuffle (the baseline once).

Check (fixed before any run; the floor since): at every K of the grid with both methods,
spatial-shuffle accuracy − channel-shuffle accuracy > margin (2 points) beyond the seed
spread: holds; at or below the margin beyond the spread: does not hold; else inconclusive.
A chance floor: at a K where spatial shuffling itself is within the margin of chance (the
paper's spatial shuffle collapses too at large K, Fig. 2), channel shuffling cannot fall
the margin below it, so that K is shown and not judged; with no K judged the claim is
inconclusive. The floor governs the next cpu run too.

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): K ∈ {1, 3}, both methods,
2 seeds: 5 arms, 10 trainings; model, data and budget as every paper B cpu recipe
(_common.py; coupled-L2 SGD from the next cpu run on).

Paper scale: VGG-16-BN on CIFAR-100, K = 0..13 for both shuffles, weiaicunzai's CIFAR-100
recipe (_common.PAPER_REFERENCE). Seeds at paper scale: 1 (seed 0), as the paper (see
_common.py).

Remaining departures from the text: "much faster" is read per K as a gap of more than 2
points; the paper's channel permutation is "in each forward pass", as here, and its exact
placement in the layer is not in the text (before the conv here, as Shuffle Conv's).

Runbook:
    spatialmix run channel-shuffle                   # cpu scale
    spatialmix run channel-shuffle --scale paper --data-dir ~/tensorflow_datasets   # CIFAR-100

Expected at cpu scale: see docs/paper-b.md
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c

METHODS = ("shuffle", "channel_shuffle")
LABEL = {"shuffle": "spatial shuffle", "channel_shuffle": "channel shuffle"}


# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("channel-shuffle")

THRESHOLDS = c.thresholds('margin')

SCALES = {
    "smoke": Scale(dataset="textures", grid={"arm": ["vgg16:none:0", "vgg16:channel_shuffle:1"]}, seeds=(0,),
                   model={"vgg16": c.VGG["smoke"]}, budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures", grid={"arm": c.k_arms("vgg16", METHODS, (1, 3))}, seeds=(0, 1),
                 model={"vgg16": c.VGG["cpu"]}, budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32, VGG-16 at 1/8 width, K ∈ {1, 3} (a subset of the paper's 0..13)."),
    "paper": Scale(dataset="cifar100", grid={"arm": c.k_arms("vgg16", METHODS, range(1, 14))}, seeds=(0,),
                   model={"vgg16": c.VGG["paper"]}, budget=c.PAPER_BUDGET, datasets=("imagenet_resized/32x32",),
                   note="paper scale: VGG-16-BN on CIFAR-100, K = 0..13 for both shuffles."),
}


run_cell = c.run_arm


def check(rows, t=THRESHOLDS.at()):
    stats = claims.arms(rows, "test_accuracy", ("method", "k"))
    ks = sorted({int(k) for (m, k) in stats if k != "0" and all((x, k) in stats for x in METHODS)})
    base = stats.get(("none", "0"))
    table = ([[0, c.fmt(base), c.fmt(base)]] if base else []) + [
        [k, c.fmt(stats[("shuffle", str(k))]), c.fmt(stats[("channel_shuffle", str(k))])] for k in ks]
    table = claims.markdown_table(["K", "spatial shuffle", "channel shuffle"], table)
    if not ks:
        return claims.Finding(claims.INCONCLUSIVE, "no K has both shuffles finished yet.", table)
    chance = 1 / c.num_classes(rows)
    verdicts, notes, floored = [], [], []
    for k in ks:
        spatial, channel = stats[("shuffle", str(k))], stats[("channel_shuffle", str(k))]
        if spatial[0] - chance <= t.margin:  # spatial shuffling at chance: nothing left to fall from
            floored.append(k)
            continue
        v = claims.beats(spatial, channel, t.margin)
        verdicts.append(v)
        notes.append(f"K={k}: spatial − channel {100 * (spatial[0] - channel[0]):+.1f} pts ({v})")
    if floored:
        notes.append(f"K={', '.join(map(str, floored))}: spatial shuffle within {100 * t.margin:.0f} pts of chance "
                     f"({100 * chance:.1f} %), not judged")
    summary = (f"Test accuracy, mean ± spread over seeds; channel order matters far more if spatial − channel "
               f"> {100 * t.margin:.0f} pts beyond the spread. " + "; ".join(notes)
               + ". Paper: 74.10 → 71.49 % with the last layer channel-shuffled (CIFAR-100).")
    return claims.Finding(claims.combine(verdicts), summary, table)


def figure(rows, path, meta):
    c.k_figure(rows, path, column="method", labels=LABEL, title=f"VGG16 on {meta['dataset']} (Fig. 10)")


RECIPE = Recipe(
    id="channel-shuffle",
    title="VGG-16: channel shuffle against spatial shuffle in the last K layers",
    paper="B, App. A.6, Fig. 10",
    claim="VGG-16 is not robust to shuffling the channel order of its last layers (74.10 → 71.49 % with one "
          "layer), unlike spatial shuffling: channel order matters far more than spatial order.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
