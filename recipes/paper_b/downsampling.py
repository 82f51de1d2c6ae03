"""downsampling: paper B, App. A.1, Fig. 4. ResNet-50 with 1x1Conv in its last K
bottlenecks; where a modified bottleneck down-samples, the stride-2 is replaced by 2×2
average pooling, 2×2 max pooling, or kept as a stride-2 1×1 conv (`downsampling` avg | max |
stride2, on both the main path and the shortcut). Paper (Small-ImageNet): stride 2 falls
much faster with K (baseline kept to K=3 vs 6 for avg); avg and max do not differ much.
Claim: pooling beats stride 2; avg ≈ max.

The methods differ only in blocks that down-sample: in ResNet-50 the first bottleneck of
stages 4, 3, 2 (K ≥ 3, 9, 13 from the end).

Grid: `arm` = 'resnet50:conv1x1:k:downsampling' (the baseline once, 'resnet50:none:0').

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): K ∈ {3, 9, 13} (one more
down-sampling block each), the three methods, 2 seeds: 10 arms, 20 trainings; model, data
and budget as every paper B cpu recipe (_common.py).

Check (fixed before any run), at the largest K of the grid (where the paper's gap is widest):
avg − stride2 > 0 and max − stride2 > 0, each beyond the seed spread (holds; ≤ 0 beyond the
spread: does not hold), and |avg − max| ≤ close (3 points; larger beyond the spread: does
not hold).

Runbook:
    spatialmix run downsampling                      # cpu scale
    spatialmix run downsampling --scale paper --data-dir ~/tensorflow_datasets   # Small-ImageNet 32×32
    measured: see README.md "Paper B at cpu scale".
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

THRESHOLDS = c.thresholds('close')

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
    stats = claims.arms(rows, "test_accuracy", ("downsampling", "k"))
    ks = sorted({int(k) for (d, k) in stats if d in METHODS and all((m, k) in stats for m in METHODS)})
    table = [[int(k), *(c.fmt(stats.get((m, k))) for m in METHODS)]
             for k in sorted({k for _, k in stats if k != "0"}, key=int)]
    base = stats.get(("none", "0"))
    if base:
        table.insert(0, [0, c.fmt(base), c.fmt(base), c.fmt(base)])
    table = claims.markdown_table(["K", *(LABEL[m] for m in METHODS)], table)
    if not ks:
        return claims.Finding(claims.INCONCLUSIVE, "no K has all three down-sampling methods finished yet.", table)
    k = str(ks[-1])
    avg, mx, s2 = (stats[m, k] for m in METHODS)
    beats = claims.combine([claims.beats(avg, s2), claims.beats(mx, s2)])
    gap = abs(avg[0] - mx[0])
    same = claims.close(avg, mx, t.close)
    summary = (f"Test accuracy, mean ± spread over seeds, at K = {k}: avg − stride2 {100 * (avg[0] - s2[0]):+.1f} pts, "
               f"max − stride2 {100 * (mx[0] - s2[0]):+.1f} pts (pooling beats stride 2: {beats}); |avg − max| "
               f"{100 * gap:.1f} pts (≈ within {100 * t.close:.0f} pts: {same}).")
    return claims.Finding(claims.combine([beats, same]), summary, table)


def figure(rows, path, meta):
    c.k_figure(rows, path, column="downsampling", labels=LABEL, title=f"ResNet50 on {meta['dataset']} (Fig. 4)")


RECIPE = Recipe(
    id="downsampling",
    title="ResNet-50 1x1Conv: average pooling, max pooling or stride 2 for down-sampling",
    paper="B, App. A.1, Fig. 4",
    claim="With 1x1Conv in the last K bottlenecks, 2×2 pooling down-sampling beats stride-2 1×1 convs "
          "(accuracy falls faster with stride 2); average and max pooling are about equal.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
