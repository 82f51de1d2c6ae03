"""depth-strip: paper B, Fig. 3 left (§4.4). ResNet-50 with its last 6 bottlenecks made
1x1Conv (the most compressed model at baseline accuracy on Small-ImageNet), then those
bottlenecks stripped one at a time from the end, each model trained afresh. Paper: accuracy
rises monotonically with the number of 1×1 bottlenecks kept (≈57 % with none, ≈61 % with 6).
Claim: the 1×1 layers carry no spatial information but depth still matters.

Grid: `strip` = how many of the 6 modified bottlenecks are removed (0..6); the model keeps
6 − strip of them. A stripped model is the zoo's ResNet-50 (spatial_method conv1x1, k 6) cut
after its (16 − strip)-th bottleneck, then global average pooling and a new classifier
(`stripped_resnet50`); the last stage disappears entirely at strip ≥ 3.

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): strip ∈ {0, 3, 6}, 2 seeds
(6 trainings); model, data and budget as every paper B cpu recipe (_common.py).

Check (fixed before any run): accuracy with all 6 bottlenecks minus accuracy with none > 0
beyond the seed spread: holds; ≤ 0 beyond the spread: does not hold; else inconclusive.

SGD's weight decay is coupled L2 (recipes.core.train), from the next cpu run on.

Paper scale: Small-ImageNet 32×32, ResNet-50 (3×3/1 stem, no max-pool) with its last 6
bottlenecks 1x1Conv, 0..6 of them stripped, weiaicunzai's CIFAR-100 recipe ("the same
configuration", §4.4; _common.PAPER_REFERENCE). Seeds at paper scale: 1 (seed 0), as the
paper (see _common.py).

Remaining departures from the text: how a stripped model ends is not in the text (global
average pooling and a new classifier after the last kept bottleneck here); the claim reads
the two ends (6 kept against none), not the monotone rise in between; Small-ImageNet's
epochs are not in the text (200 here).

Runbook:
    spatialmix run depth-strip                       # cpu scale
    spatialmix run depth-strip --scale paper --data-dir ~/tensorflow_datasets   # Small-ImageNet 32×32

Expected at cpu scale: see docs/paper-b.md
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c

MODIFIED = 6
N_BOTTLENECKS = 16
STAGES = (3, 4, 6, 3)


# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("depth-strip")

THRESHOLDS = claims.NO_THRESHOLDS

SCALES = {
    "smoke": Scale(dataset="textures", grid={"strip": [0, 6]}, seeds=(0,), model={"resnet50": c.RESNET["smoke"]},
                   budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures", grid={"strip": [0, 3, 6]}, seeds=(0, 1), model={"resnet50": c.RESNET["cpu"]},
                 budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32, ResNet-50 (CIFAR variant) at 1/16 width with its last 6 "
                      "bottlenecks 1x1Conv, 0, 3 or 6 of them stripped (a subset of the paper's 0..6)."),
    "paper": Scale(dataset="imagenet_resized/32x32", grid={"strip": list(range(0, MODIFIED + 1))}, seeds=(0,),
                   model={"resnet50": c.RESNET["paper"]}, budget=c.PAPER_BUDGET, datasets=("cifar100",),
                   note="paper scale: Small-ImageNet 32×32, ResNet-50 (3×3/1 stem, no max-pool), strip 0..6."),
}


def bottleneck_names():
    return [f"stage{s}_block{b}" for s, n in enumerate(STAGES, start=1) for b in range(1, n + 1)]


def stripped_resnet50(strip, **config):
    """The zoo's ResNet-50 with the last 6 bottlenecks 1x1Conv, cut after bottleneck 16 − strip."""
    import keras

    import zoo
    from zoo.blocks import torch_default_init

    model = zoo.create_model("resnet50", **{**config, "spatial_method": "conv1x1", "k": MODIFIED})
    if strip == 0:
        return model
    last = bottleneck_names()[N_BOTTLENECKS - 1 - strip]
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(model.get_layer(f"{last}_out").output)
    outputs = keras.layers.Dense(model.get_layer("classifier").units, kernel_initializer=torch_default_init(),
                                 dtype="float32", name="classifier")(x)  # float32 logits, as the zoo's
    return keras.Model(model.inputs, outputs, name=f"resnet50_strip{strip}")


def run_cell(cell):
    strip = int(cell.config["strip"])
    config = c.model_config(cell, "resnet50")
    metrics = c.train(cell, "resnet50", config,
                      build_model=lambda name, full: stripped_resnet50(strip, **full))
    return {"layers_1x1": MODIFIED - strip, **metrics}


def check(rows, t=THRESHOLDS.at()):
    stats = claims.arms(rows, "test_accuracy", ("strip",))
    full, none = stats.get((str(0),)), stats.get((str(MODIFIED),))
    table = [[MODIFIED - int(s), c.fmt(v), c.params_m(rows, {"strip": s})]
             for (s,), v in sorted(stats.items(), key=lambda kv: -int(kv[0][0]))]
    table = claims.markdown_table(["1×1 bottlenecks kept", "top-1", "params (M)"], table)
    if not full or not none:
        return claims.Finding(claims.INCONCLUSIVE, "the runs with all 6 and with none of the 1×1 bottlenecks are not both "
                                       "finished yet.", table)
    v = claims.beats(full, none)
    summary = (f"Test accuracy, mean ± spread over seeds. With all {MODIFIED} 1×1 bottlenecks {c.fmt(full)}, "
               f"with none {c.fmt(none)}: {100 * (full[0] - none[0]):+.1f} pts. Paper (Small-ImageNet): "
               f"≈57 % with none rising to ≈61 % with 6.")
    return claims.Finding(v, summary, table)


def figure(rows, path, meta):
    stats = claims.arms(rows, "test_accuracy", ("strip",))
    c.line_figure(path, {"1x1Conv bottlenecks": [(MODIFIED - int(s), v) for (s,), v in stats.items()]},
                  title=f"ResNet50 on {meta['dataset']} (Fig. 3 left)", xlabel="number of 1x1 conv layers",
                  xticks=list(range(0, MODIFIED + 1)))


RECIPE = Recipe(
    id="depth-strip",
    title="ResNet-50: strip the 1x1Conv bottlenecks one by one",
    paper="B, Fig. 3 left (§4.4)",
    claim="Removing the last bottlenecks that 1x1Conv made spatial-free costs accuracy (it rises with the number "
          "of 1×1 bottlenecks kept): the spatial information is not needed there, the depth is.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
