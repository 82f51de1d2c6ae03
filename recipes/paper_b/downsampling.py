"""downsampling: paper B, App. A.1, Fig. 4. ResNet-50 with 1x1Conv in its last K
bottlenecks; where a modified bottleneck down-samples, the stride-2 is replaced by 2×2
average pooling, 2×2 max pooling, or kept as a stride-2 1×1 conv (`downsampling` avg | max |
stride2, on both the main path and the shortcut).

Claim, as App. A.1 words it: "With the same test accuracy as the baseline, the number of
modifiable layers is 3 for convolution with stride 2 and 6 for average pooling", and
"Average pooling or max pooling ... their performance according to the plot doesn't have
significant difference to each other" (ResNet-50, Small-ImageNet).

The methods differ only in blocks that down-sample: in ResNet-50 the first bottleneck of
stages 4, 3, 2 (K ≥ 3, 9, 13 from the end).

Grid: `arm` = 'resnet50:conv1x1:k:downsampling' (the baseline once, 'resnet50:none:0').

Check, at the paper's measure (it compared the arms' accuracy at the largest K before;
this governs the next cpu run too):
- pooling lets more layers be modified: per method, how many last bottlenecks can be
  modified within tol of the baseline (1 point at paper scale, the paper's "within 1%"; 2 at
  cpu scale), as a bracket over the grid's K's (_common.modifiable: the largest K that holds
  within tol, the largest K that does not fail it beyond the seed spread). avg and max each
  beat stride2: holds when the pooling bracket lies above stride2's, does not hold when it
  lies at or below, inconclusive where they overlap (_common.more_modifiable). A baseline
  within tol of chance makes every K inconclusive.
- avg ≈ max: |avg − max| ≤ close (3 points) at the largest K of the grid, where they differ
  most (claims.close).

The baseline's down-sampling, and why the zoo is not changed: the zoo's ResNet-50 strides
its 3×3 conv (torchvision's v1.5 bottleneck), and A.1 says "ResNets use 1×1 convolution with
stride 2 to reduce the feature map size". Read whole, the paragraph describes the v1.5
layout: the stride-2 1×1 conv it names is the projection shortcut of a down-sampling
bottleneck, there in both layouts, and it says that in an ordinary down-sampling bottleneck
a "3×3 convolution is deployed to ensure the information at each location is processed",
which holds only where the 3×3 conv takes the stride (in v1 the first 1×1 conv takes it and
the 3×3 sees a quarter of the positions). The parameter counts cannot tell the two apart;
the public CIFAR-100 code whose counts match the paper's (weiaicunzai/pytorch-cifar100) and
torchvision both stride the 3×3. The `stride2` arm is what A.1 tests, "a direct
adaptation": in a modified down-sampling block the 1×1 conv that replaced the 3×3 and the
shortcut's 1×1 conv both stride by 2, so both paths drop 75 % of the positions.

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): K ∈ {3, 9, 13} (one more
down-sampling block each), the three methods, 2 seeds: 10 arms, 20 trainings; model, data
and budget as every paper B cpu recipe (_common.py; coupled-L2 SGD from the next cpu run).

Paper scale: Small-ImageNet 32×32 (`imagenet_resized/32x32`), ResNet-50 (3×3/1 stem, no
max-pool), K = 0..16 for each method, weiaicunzai's CIFAR-100 recipe ("Experimental setup is
the same as the CIFAR100 experiment", A.2). Seeds at paper scale: 1 (seed 0), as the paper
(see _common.py).

Remaining departures from the text: Small-ImageNet's epochs are not in the text (200 here);
for K < 3 the three methods build the same network and are trained three times.

Runbook:
    spatialmix run downsampling                      # cpu scale
    spatialmix run downsampling --scale paper --data-dir ~/tensorflow_datasets   # Small-ImageNet 32×32

Expected at cpu scale: see docs/paper-b.md
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c

METHODS = ("avg", "max", "stride2")
LABEL = {"avg": "AvgPool", "max": "MaxPool", "stride2": "Stride 2"}


def arms(ks):
    return [c.arm("resnet50")] + [c.arm("resnet50", "conv1x1", k, d) for d in METHODS for k in ks]



# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("downsampling")

THRESHOLDS = c.thresholds('tol', 'close')

SCALES = {
    "smoke": Scale(dataset="textures", grid={"arm": ["resnet50:conv1x1:3:avg", "resnet50:conv1x1:3:stride2"]},
                   seeds=(0,), model={"resnet50": c.RESNET["smoke"]}, budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures", grid={"arm": arms((3, 9, 13))}, seeds=(0, 1), model={"resnet50": c.RESNET["cpu"]},
                 budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32, ResNet-50 (CIFAR variant) at 1/16 width, K ∈ {3, 9, 13} "
                      "(a subset of the paper's 0..16)."),
    "paper": Scale(dataset="imagenet_resized/32x32", grid={"arm": arms(range(1, 17))}, seeds=(0,),
                   model={"resnet50": c.RESNET["paper"]}, budget=c.PAPER_BUDGET, datasets=("cifar100",),
                   note="paper scale: Small-ImageNet 32×32, ResNet-50 (3×3/1 stem, no max-pool), K = 0..16."),
}


def run_cell(cell):
    a = c.parse_arm(cell.config["arm"])
    config = {**c.model_config(cell, "resnet50"), "spatial_method": a["method"], "k": a["k"]}
    down = a["extra"] or "avg"
    if a["method"] == "conv1x1":
        config["downsampling"] = down
    return {"net": a["net"], "method": a["method"], "k": a["k"], "downsampling": down if a["k"] else "none",
            **c.train(cell, "resnet50", config)}


def check(rows, t=THRESHOLDS.at()):
    chance = 1 / c.num_classes(rows)  # a baseline at chance has nothing to lose
    stats = claims.arms(rows, "test_accuracy", ("downsampling", "k"))
    ks = sorted({int(k) for (d, k) in stats if d in METHODS and all((m, k) in stats for m in METHODS)})
    table = [[int(k), *(c.fmt(stats.get((m, k))) for m in METHODS)]
             for k in sorted({k for _, k in stats if k != "0"}, key=int)]
    base = stats.get(("none", "0"))
    if base:
        table.insert(0, [0, c.fmt(base), c.fmt(base), c.fmt(base)])
    if not ks or not base:
        return claims.Finding(claims.INCONCLUSIVE, "the baseline and a K with all three down-sampling methods are "
                                                   "not both finished yet.", claims.markdown_table(
                                                       ["K", *(LABEL[m] for m in METHODS)], table))
    counts = {m: c.modifiable(base, {k: stats[m, str(k)] for k in ks}, t.tol, chance) for m in METHODS}
    table.append(["modifiable", *(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in (counts[m] for m in METHODS))])
    table = claims.markdown_table(["K", *(LABEL[m] for m in METHODS)], table)
    pooling = {m: c.more_modifiable(counts[m], counts["stride2"]) for m in ("avg", "max")}
    k = str(ks[-1])
    avg, mx = stats["avg", k], stats["max", k]
    same = claims.close(avg, mx, t.close)

    def text(bracket):
        return str(bracket[0]) if bracket[0] == bracket[1] else f"{bracket[0]}-{bracket[1]}"

    summary = (f"Test accuracy, mean ± spread over seeds. Last bottlenecks modifiable within {100 * t.tol:g} pts of "
               f"the baseline (of K = {', '.join(map(str, ks))}): avg {text(counts['avg'])}, max "
               f"{text(counts['max'])}, stride 2 {text(counts['stride2'])} (pooling lets more be modified: avg "
               f"{pooling['avg']}, max {pooling['max']}); at K = {k} |avg − max| {100 * abs(avg[0] - mx[0]):.1f} pts "
               f"(≈ within {100 * t.close:.0f} pts: {same}). Paper (Small-ImageNet): 6 with average pooling, 3 with "
               f"stride 2.")
    return claims.Finding(claims.combine([*pooling.values(), same]), summary, table)


def figure(rows, path, meta):
    c.k_figure(rows, path, column="downsampling", labels=LABEL, title=f"ResNet50 on {meta['dataset']} (Fig. 4)")


RECIPE = Recipe(
    id="downsampling",
    title="ResNet-50 1x1Conv: average pooling, max pooling or stride 2 for down-sampling",
    paper="B, App. A.1, Fig. 4",
    claim="With 1x1Conv in the last K bottlenecks, 2×2 pooling down-sampling lets more bottlenecks be modified at "
          "the baseline's accuracy than stride-2 1×1 convs (6 against 3 on Small-ImageNet); average and max pooling "
          "are about equal.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
