"""static-filters: paper A, Fig. 3 (§4.1.3). A fully learned separable ResNet (Full) beside
channels-only ones (chans mode) whose frozen depthwise filters are of one fixed kind:
`random` (the paper's "Different": independent random filters), `same` (one set of d = 9
random k×k kernels repeated for every input channel), `box` (every tap 1/k²) or `identity`
(a centred delta: no spatial mixing at all).

Claim, as the paper words it: "the randomly initialized spatial mixing performs only
slightly worse than the fully-learned version"; then "a large performance drop" to Same,
"the next drop-off" to Box, and "the catastrophic failure of the identity filter":
full ≈ random > same > box ≫ identity.

Thresholds (`spatialmix show static-filters`):
- full ≈ random is a tolerance: full − random ≤ close = 3 pts (claims.within; a larger loss
  beyond the seed spread does not hold). It was "full > random" beyond the spread, an
  ordering the paper does not claim; the change governs the next cpu run too.
- each ">" link holds when the upper arm's mean is higher beyond the two arms' combined
  seed spread, and does not hold when it is lower beyond it (claims.beats); the "≫" link
  (box ≫ identity) also needs a margin of at least far = 10 pts.
The whole chain holds only if every link holds, and does not hold if any link does not.

How the cpu scale was chosen (written before its first run, not changed after):
resnet-mixing's cpu miniature of the paper's separable ResNet (width 16, d = 9, k = 3) at
depth n = 1 (ResNet-8, the cheaper of resnet-mixing's two depths: five arms × 2 seeds = 10
cells), He et al.'s SGD step schedule scaled to 3 epochs of batch 128, on `textures`, no
augmentation. SGD's weight decay is coupled L2 as in He et al. (recipes.core.train), from the
next cpu run on.

Paper scale: CIFAR-10, separable ResNet-20 (n = 3, width 16, d = 9, k = 3), He et al.'s
schedule (SGD, momentum 0.9, coupled weight decay 1e-4, batch 128, lr 0.1 /10 at 50 % and
75 % of 164 epochs), random crop + flip.

Seeds at paper scale: 2 (0, 1). The chain's ">" links are orderings, read beyond the seed
spread, which one seed does not have; 2 seeds double the 5 × 164-epoch cells, which a GPU
budget allows.

Remaining departures from the text: the depth and the data set of Fig. 3 are not in the
text (ResNet-20 on CIFAR-10 here); "only slightly worse" is read as at most 3 pts, "large
drop" and "drop-off" as a lower mean beyond the seed spread.

    spatialmix run static-filters                      # cpu scale, 10 cells, 2 seeds
    spatialmix run static-filters --scale paper --data-dir ~/tensorflow_datasets   # CIFAR-10, 10 cells

Expected at cpu scale: see docs/paper-a.md
"""

from recipes.core import claims
from recipes.core.budget import cpu_budget
from recipes.core.engine import Recipe, Scale
from recipes.paper_a._common import (RESNET_CPU_BUDGET, RESNET_CPU_MODEL as CPU_MODEL,
                                     RESNET_IMAGENET as IMAGENET_OVERRIDE, RESNET_PAPER_BUDGET as PAPER_BUDGET,
                                     RESNET_PAPER_MODEL as PAPER_MODEL, RESNET_REFERENCE,
                                     RESNET_SMOKE_BUDGET as SMOKE_BUDGET, RESNET_SMOKE_MODEL as SMOKE_MODEL)

THRESHOLDS = claims.Thresholds(
    close=claims.Threshold(0.03, "random (Different) is 'only slightly worse' than full: full − random at most "
                                 "this (a larger loss beyond the seed spread does not hold)"),
    far=claims.Threshold(0.10, "box ≫ identity (catastrophic): box − identity at least this, beyond the seed "
                               "spread; each '>' link needs its difference beyond the spread"),
)
ARMS = ("full", "random", "same", "box", "identity")
LABELS = {"full": "Full", "random": "Different", "same": "Same", "box": "Box", "identity": "Identity"}
COLOURS = {"full": "tab:blue", "random": "tab:red", "same": "gold", "box": "tab:green", "identity": "tab:orange"}
LINKS = (("full", "random", "≈"), ("random", "same", ">"), ("same", "box", ">"), ("box", "identity", "≫"))

SCALES = {
    "smoke": Scale(dataset="digits", grid={"filters": list(ARMS)}, seeds=(0,), model={**SMOKE_MODEL, "depth": 1},
                   budget=SMOKE_BUDGET, datasets=("textures",)),
    "cpu": Scale(
        dataset="textures", grid={"filters": list(ARMS)}, seeds=(0, 1), model={**CPU_MODEL, "depth": 1},
        budget=cpu_budget(RESNET_CPU_BUDGET, "static-filters", "textures"), datasets=("digits",),  # by the rule
        note="cpu scale: 14-class textures, the paper's CIFAR separable ResNet (width 16, d=9, k=3) at depth n=1 "
             "(ResNet-8), SGD step schedule scaled to 3 epochs of batch 128. `full` learns everything (random "
             "init); the other arms are chans mode with that filter kind frozen.",
    ),
    "paper": Scale(
        dataset="cifar10", grid={"filters": list(ARMS)}, seeds=(0, 1), model={**PAPER_MODEL, "depth": 3},
        budget=PAPER_BUDGET, datasets=("cifar100", "imagenet2012"), overrides={"imagenet2012": IMAGENET_OVERRIDE},
        note="paper scale: separable ResNet-20 (n=3, width 16, d=9, k=3). The depth and data set of the paper's "
             "Fig. 3 are not in its text; CIFAR-10 and ResNet-20 are assumed.",
    ),
}


def run_cell(cell):
    kind = cell.config["filters"]
    config = dict(cell.model)
    depth = config.pop("depth")
    cell_model = {"full": ("full", "random")}.get(kind, ("chans", kind))
    return _train(cell, config, depth, *cell_model)


def _train(cell, config, depth, mode, filters):
    from recipes.core.tasks import train_classifier

    arch = config.pop("arch")
    return train_classifier(cell, arch, {**config, "depth": int(depth), "mode": mode, "filters": filters},
                            family="resnet")


def link_verdict(upper, lower, kind, t):
    if kind == "≈":
        return claims.within(upper, lower, t.close)
    return claims.beats(upper, lower, t.far if kind == "≫" else 0.0)


def check(rows, t=THRESHOLDS.at()):
    stats = {k[0]: v for k, v in claims.arms(rows, "test_accuracy", ("filters",)).items()}
    table = [[LABELS[a], claims.pct(stats[a]), stats[a][2]] for a in ARMS if a in stats]
    if any(a not in stats for a in ARMS):
        missing = ", ".join(a for a in ARMS if a not in stats)
        return claims.Finding(claims.INCONCLUSIVE, f"arms not finished yet: {missing}.",
                       claims.markdown_table(["arm", "test accuracy", "seeds"], table) if table else "")
    if claims.at_ceiling(*stats.values()):
        return claims.Finding(claims.INCONCLUSIVE, "all arms at the ceiling.", claims.markdown_table(["arm", "test accuracy", "seeds"], table))
    notes, verdicts = [], []
    for upper, lower, kind in LINKS:
        v = link_verdict(stats[upper], stats[lower], kind, t)
        verdicts.append(v)
        notes.append(f"{LABELS[upper]} {kind} {LABELS[lower]}: {v} ({100 * (stats[upper][0] - stats[lower][0]):+.1f} pts)")
    summary = (f"Test accuracy, mean ± spread over seeds. '≈' is a loss of at most {100 * t.close:.0f} pts; '>' "
               f"needs the difference beyond the combined seed spread; '≫' also a margin ≥ {100 * t.far:.0f} pts. "
               + "; ".join(notes) + ".")
    return claims.Finding(claims.combine(verdicts), summary, claims.markdown_table(["arm", "test accuracy", "seeds"], table))


def figure(rows, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = {k[0]: v for k, v in claims.arms(rows, "test_accuracy", ("filters",)).items()}
    shown = [a for a in ARMS if a in stats]
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    ax.bar(range(len(shown)), [100 * stats[a][0] for a in shown], yerr=[100 * stats[a][1] for a in shown],
           color=[COLOURS[a] for a in shown], capsize=4)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([LABELS[a] for a in shown])
    ax.set_xlabel("spatial filters (Full: learned; others: frozen, chans)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Static filters, separable ResNet on {meta['dataset']} ({meta['scale']} scale)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


RECIPE = Recipe(
    id="static-filters",
    title="Separable ResNet: which frozen spatial filters work",
    paper="A, Fig. 3 (§4.1.3)",
    claim="Frozen random filters that differ per channel are only slightly worse than learned ones, but not any "
          "fixed filter does: full ≈ random (Different) > same > box ≫ identity (a catastrophic failure).",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=RESNET_REFERENCE,
)
