"""spatial-ablation: paper B, Fig. 2 and Table 1 (CIFAR-100), Fig. 5 and Table 3
(Small-ImageNet). VGG-16 and ResNet-50 with their last K conv layers (VGG) or bottlenecks
(ResNet) modified by Shuffle Conv, GAP+FC or 1x1Conv. Claim: the last ~5 layers lose their
spatial information within 1 point of the baseline (K = 0). Table 1's layout: per method,
the most compressed model within the tolerance of K = 0 and the best model, with parameters.

Grid: `arm` = 'net:method:k' (the baseline once per net).

How the cpu scale was chosen (the grid before any run, not changed after; the
epochs re-chosen once, see CPU_BUDGET below): K ∈ {0, 5, 9} for both
nets (the claim's K = 5 and one deeper point; the paper's full sweeps 0..13 / 0..16 are the
paper scale), the three methods, 2 seeds: 14 arms, 28 trainings; model, data and budget as
every paper B cpu recipe (recipes/paper_b/_common.py).

Check (fixed before any run): for each net and method, K = 5 against K = 0: holds if the
drop is ≤ tol (2 points at cpu scale, standing for the paper's 1 point), does not hold if
it is larger and beyond the seed spread, else inconclusive; the claim holds if all six do.

Runbook:
    spatialmix run spatial-ablation                  # cpu scale
    spatialmix run spatial-ablation --scale paper --data-dir ~/tensorflow_datasets            # CIFAR-100
    spatialmix run spatial-ablation --scale paper --dataset imagenet_resized/32x32 ...        # Table 3
    measured: see README.md "Paper B at cpu scale".
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c

METHODS = ("shuffle", "gap_fc", "conv1x1")
NETS = ("vgg16", "resnet50")
CLAIM_K = 5
LABEL = {"shuffle": "Shuffle", "gap_fc": "GAP+FC", "conv1x1": "1x1Conv"}
PAPER_TABLE1 = {"vgg16": "baseline 74.12 (34.02 M); GAP+FC K=5 73.21 (23.53 M), K=2 74.00; "
                         "1x1Conv K=5 74.06 (23.53 M), K=2 74.80 (29.82 M)",
                "resnet50": "baseline 78.06 (23.71 M); GAP+FC K=5 77.42 (16.37 M), K=2 79.42; "
                            "1x1Conv K=9 78.49 (14.26 M), K=2 79.42 (19.51 M)"}


def grid(vgg_ks, resnet_ks):
    return {"arm": c.k_arms("vgg16", METHODS, vgg_ks) + c.k_arms("resnet50", METHODS, resnet_ks)}



# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("spatial-ablation")

THRESHOLDS = c.thresholds('tol')

SCALES = {
    "smoke": Scale(dataset="textures", grid={"arm": ["vgg16:none:0", "vgg16:conv1x1:5", "resnet50:none:0"]},
                   seeds=(0,), model={"vgg16": c.VGG["smoke"], "resnet50": c.RESNET["smoke"]},
                   budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures", grid=grid((5, 9), (5, 9)), seeds=(0, 1),
                 model={"vgg16": c.VGG["cpu"], "resnet50": c.RESNET["cpu"]}, budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32, VGG-16 at 1/8 and ResNet-50 (CIFAR variant) at 1/16 width, "
                      "K ∈ {0, 5, 9} (a subset of the paper's 0..13 and 0..16)."),
    "paper": Scale(dataset="cifar100", grid=grid(range(1, 14), range(1, 17)), seeds=(0,),
                   model={"vgg16": c.VGG["paper"], "resnet50": c.RESNET["paper"]}, budget=c.PAPER_BUDGET,
                   datasets=("imagenet_resized/32x32",),
                   note="paper scale: VGG-16-BN K = 0..13, ResNet-50 (3×3/1 stem, no max-pool) K = 0..16; "
                        "Shuffle is not in the paper's Small-ImageNet runs but is kept here."),
}


run_cell = c.run_arm


def _stats(rows):
    return claims.arms(rows, "test_accuracy", ("net", "method", "k"))


def table1(rows, stats, t):
    """Table 1's layout: per net and method, the most compressed model within tol of the
    baseline and the best model (K, accuracy, parameters in millions)."""
    out = []
    for net in NETS:
        base = stats.get((net, "none", "0"))
        if not base:
            continue
        out.append([net, "baseline", 0, c.fmt(base), c.params_m(rows, {"net": net, "k": 0})])
        for method in METHODS:
            arms = {int(k): s for (n, m, k), s in stats.items() if n == net and m == method}
            if not arms:
                continue
            within = [k for k, s in arms.items() if base[0] - s[0] <= t.tol]
            best = max(arms, key=lambda k: arms[k][0])
            if within:
                k = max(within, key=lambda k: (k, arms[k][0]))
                out.append([net, f"{LABEL[method]} (most compressed within {100 * t.tol:.0f} pts)", k,
                            c.fmt(arms[k]), c.params_m(rows, {"net": net, "method": method, "k": k})])
            out.append([net, f"{LABEL[method]} (best)", best, c.fmt(arms[best]),
                        c.params_m(rows, {"net": net, "method": method, "k": best})])
    return out


def check(rows, t=THRESHOLDS.at()):
    chance = 1 / c.num_classes(rows)  # a baseline at chance has nothing to lose
    stats = _stats(rows)
    verdicts, notes = [], []
    for net in NETS:
        base = stats.get((net, "none", "0"))
        for method in METHODS:
            arm = stats.get((net, method, str(CLAIM_K)))
            if base and arm:
                v = claims.within(base, arm, t.tol, chance=chance)
                verdicts.append(v)
                notes.append(f"{net} {LABEL[method]} K={CLAIM_K}: {v} ({100 * (arm[0] - base[0]):+.1f} pts)")
    if not verdicts:
        return claims.Finding(claims.INCONCLUSIVE, f"no net has both its baseline and a K={CLAIM_K} arm finished yet.")
    verdict = claims.combine(verdicts, expected=2 * len(METHODS))
    summary = (f"Test accuracy, mean ± spread over seeds; K = {CLAIM_K} against the baseline, within "
               f"{100 * t.tol:.0f} pts. " + "; ".join(notes) + ". Paper (Table 1): "
               + " | ".join(f"{n}: {text}" for n, text in PAPER_TABLE1.items()) + ".")
    table = claims.markdown_table(["net", "model", "K", "top-1", "params (M)"], table1(rows, stats, t))
    return claims.Finding(verdict, summary, table)


def figure(rows, path, meta):
    stats = _stats(rows)
    panels = {}
    for net, title in (("vgg16", "VGG16"), ("resnet50", "ResNet50")):
        base = stats.get((net, "none", "0"))
        series = {}
        for method in METHODS:
            points = [(int(k), s) for (n, m, k), s in stats.items() if n == net and m == method]
            if points and base:
                points.append((0, base))
            if points:
                series[LABEL[method]] = points
        if series or base:
            panels[f"{title} on {meta['dataset']}"] = series or {"baseline": [(0, base)]}
    c.line_figure(path, {}, title="", xlabel="K", panels=panels or {"no rows": {}})


RECIPE = Recipe(
    id="spatial-ablation",
    title="VGG-16 and ResNet-50 without spatial information in the last K layers",
    paper="B, Fig. 2, Table 1 (§4.1); Fig. 5, Table 3 (App. A.2)",
    claim="The last ~5 layers of VGG-16 and ResNet-50 can lose their spatial information (Shuffle Conv, "
          "GAP+FC, 1x1Conv) within 1 point of the baseline; 1x1Conv and GAP+FC also cut parameters.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
