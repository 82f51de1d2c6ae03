"""imagenet-1x1: paper B, Table 4 and Figs. 8-9 (§4.3, App. A.5). 1x1Conv in the last K
layers of ResNet-152, ResNet-50, VGG-16, MobileNetV2 (its 3×3 depthwise removed) and
SqueezeNet (its 3×3 expand convs 1×1). Paper (ImageNet, best K): ResNet-152 K=19 77.82 vs
77.66; ResNet-50 K=5 75.53 vs 75.22; VGG-16 K=1 72.51 vs 72.96; MobileNetV2 K=2 72.06 vs
72.29; SqueezeNet K=2 60.64 vs 60.07. Claim: the last layers become 1×1 at no cost.

Grid: `arm` = 'net:method:k' (the baseline once per net).

Check (fixed before any run): per family, the best 1x1Conv arm of the grid ("The best
performed models are selected", Table 4) minus the baseline ≥ −tol holds (tol: 1 point at
paper scale, the paper's "within 1%"; 2 at cpu scale); a larger drop beyond the seed spread
does not hold; a baseline within tol of chance is inconclusive. The claim holds if it holds
for every family.

How the cpu scale was chosen (epochs by the rule, see CPU_BUDGET below): four families at
their baseline and at Table 4's K (19, 5, 1, 2), 2 seeds: 8 arms, 16 trainings. Widths: the
ResNets (CIFAR variant: 32×32 input) at 1/16, VGG-16 at 1/8, MobileNetV2 at 1/2 (at 1/8 its
baseline stays near 3× chance, 21 %, within the budget; at 1/2 it reaches about 30 % at the
same step cost on 2 cores). Data and budget as every paper B cpu recipe
(recipes/paper_b/_common.py), one shared SGD schedule for all families.
SqueezeNet is dropped from the cpu grid (a grid point before epochs): it has no batch norm,
and on 32×32 textures its baseline stays below 3× chance in any budget that fits (at most
about 20 % after 24 epochs, at lr 0.005-0.05 and widths 1/8-1/2), and a baseline that did not
learn cannot show that a change costs nothing. It stays in the smoke and paper scales.
ImageNet itself is the paper scale.

Paper scale: ImageNet 224×224, random-resized crop + flip. The paper "first reproduce[s]
baselines as in the original papers and then appl[ies] the same training scheme": each
family trains with its own reference recipe (SGD, momentum 0.9, coupled weight decay;
_common.IMAGENET_BUDGETS, printed by `spatialmix show imagenet-1x1`):
- ResNet-152, ResNet-50: He et al. 2016: lr 0.1, wd 1e-4, batch 256, 90 epochs, /10 at 30, 60.
- VGG-16 (with BN): torchvision's reference: as the ResNets with lr 0.01 (the VGG paper's
  own recipe has no batch norm and drops its lr "when the validation accuracy stopped
  improving", which is not a fixed schedule).
- MobileNetV2: torchvision's reference (71.9 %, the original's 72.0): lr 0.045, wd 4e-5,
  batch 256, 300 epochs, ×0.98 every epoch (the original's RMSProp ran on 16 asynchronous
  workers, which one training cannot reproduce).
- SqueezeNet 1.0: the authors' released Caffe solver: lr 0.08, wd 2e-4, batch 1024, 85k
  iterations (68 epochs), polynomial decay of power 0.5. Not He's lr 0.1: SqueezeNet has no
  batch norm.
K sweeps as Figs. 8-9: ResNet-152 every K from 1 to 46 (the paper's best, K = 19, is odd),
ResNet-50 1-15, VGG-16, MobileNetV2 1-5, SqueezeNet 1-4.

Seeds at paper scale: 1 (seed 0), as the paper (see _common.py); 80 ImageNet trainings,
47 of them ResNet-152s, leave no room for more.

Remaining departures from the text: the zoo's convs start from torchvision's init (kaiming
normal, fan_out) in every family, SqueezeNet's Caffe solver was tuned for Xavier init; the
K sweeps of VGG-16, MobileNetV2 and SqueezeNet beyond Table 4's K are not in the text;
"no loss" is read as within 1 point.

Runbook:
    spatialmix run imagenet-1x1                      # cpu scale
    spatialmix run imagenet-1x1 --scale paper --data-dir /data/tfds    # ImageNet (manual download)

Expected at cpu scale: see docs/paper-b.md
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale
from recipes.paper_b import _common as c

NETS = ("resnet152", "resnet50", "vgg16", "mobilenet_v2", "squeezenet")
TITLE = {"resnet152": "ResNet152", "resnet50": "ResNet50", "vgg16": "VGG16", "mobilenet_v2": "MobileNetV2",
         "squeezenet": "SqueezeNet"}
TABLE4_K = {"resnet152": 19, "resnet50": 5, "vgg16": 1, "mobilenet_v2": 2, "squeezenet": 2}
PAPER = {"resnet152": "77.66 → 77.82 (K=19; 60.19 → 45.51 M)", "resnet50": "75.22 → 75.53 (K=5; 25.55 → 18.22 M)",
         "vgg16": "72.96 → 72.51 (K=1; 37.70 → 35.60 M)", "mobilenet_v2": "72.29 → 72.06 (K=2; 3.50 → 3.48 M)",
         "squeezenet": "60.07 → 60.64 (K=2; 1.25 → 1.23 M)"}

MODELS = {
    "smoke": {"resnet152": c.RESNET["smoke"], "resnet50": c.RESNET["smoke"], "vgg16": c.VGG["smoke"],
              "mobilenet_v2": {"width_multiplier": 1 / 16}, "squeezenet": {"width_multiplier": 1 / 16}},
    "cpu": {"resnet152": c.RESNET["cpu"], "resnet50": c.RESNET["cpu"], "vgg16": c.VGG["cpu"],
            "mobilenet_v2": {"width_multiplier": 1 / 2}},          # no SqueezeNet (see above)
    "paper": {"resnet152": {"variant": "imagenet"}, "resnet50": {"variant": "imagenet"}, "vgg16": {},
              "mobilenet_v2": {}, "squeezenet": {}},
}
NETS_AT = {scale: tuple(models) for scale, models in MODELS.items()}   # the families each scale trains
PAPER_KS = {"resnet152": range(1, 47), "resnet50": range(1, 16), "vgg16": range(1, 6),
            "mobilenet_v2": range(1, 6), "squeezenet": range(1, 5)}
# He et al.'s recipe as the default, each family's own by net (train resolves `by_net`)
IMAGENET_BUDGET = {**c.IMAGENET_BUDGETS["resnet50"], "augment": True, "by_net": c.IMAGENET_BUDGETS}


# Epochs by the rule (recipes.core.budget): the most that fit 10 minutes at the step times measured
# for this grid (recipes/core/steptimes.json), at most _common.CPU_MAX_EPOCHS.
CPU_BUDGET = c.cpu_budget("imagenet-1x1")

THRESHOLDS = c.thresholds('tol')

SCALES = {
    "smoke": Scale(dataset="textures", grid={"arm": ["squeezenet:none:0", "squeezenet:conv1x1:2",
                                                     "mobilenet_v2:conv1x1:2"]},
                   seeds=(0,), model=MODELS["smoke"], budget=c.SMOKE_BUDGET),
    "cpu": Scale(dataset="textures",
                 grid={"arm": [a for n in NETS_AT["cpu"] for a in (c.arm(n), c.arm(n, "conv1x1", TABLE4_K[n]))]},
                 seeds=(0, 1), model=MODELS["cpu"], budget=CPU_BUDGET,
                 note="cpu scale: textures 32×32 (not ImageNet), each family at its baseline and at Table 4's K; "
                      "VGG-16 at 1/8 width, ResNets at 1/16 (in their CIFAR variant), MobileNetV2 at 1/2; "
                      "no SqueezeNet (without batch norm its baseline does not learn at this scale)."),
    "paper": Scale(dataset="imagenet2012", grid={"arm": [a for n in NETS for a in c.k_arms(n, ("conv1x1",), PAPER_KS[n])]},
                   seeds=(0,), model=MODELS["paper"], budget=IMAGENET_BUDGET,
                   note="paper scale: ImageNet 224×224, each family with its own reference recipe "
                        "(_common.IMAGENET_BUDGETS); K sweeps as Figs. 8-9 (ResNet-152 every K up to 46)."),
}


run_cell = c.run_arm


def check(rows, t=THRESHOLDS.at()):
    chance = 1 / c.num_classes(rows)  # a baseline at chance has nothing to lose
    stats = claims.arms(rows, "test_accuracy", ("net", "k"))
    verdicts, notes, table = [], [], []
    for net in NETS:
        base = stats.get((net, "0"))
        arms = {int(k): s for (n, k), s in stats.items() if n == net and k != "0"}
        if not base or not arms:
            continue
        best = max(arms, key=lambda k: arms[k][0])
        v = claims.within(base, arms[best], t.tol, chance=chance)
        verdicts.append(v)
        notes.append(f"{TITLE[net]} K={best}: {100 * (arms[best][0] - base[0]):+.1f} pts ({v})")
        table.append([TITLE[net], c.fmt(base), c.params_m(rows, {"net": net, "k": 0}), best, c.fmt(arms[best]),
                      c.params_m(rows, {"net": net, "k": best}), PAPER[net]])
    if not verdicts:
        return claims.Finding(claims.INCONCLUSIVE, "no family has both its baseline and a 1x1Conv arm finished yet.")
    verdict = claims.combine(verdicts, expected=len(NETS_AT.get(rows[0].get("scale"), NETS)))
    summary = (f"Test accuracy, mean ± spread over seeds; the best 1x1Conv K of the grid against the baseline, "
               f"within {100 * t.tol:.0f} pts. " + "; ".join(notes) + ".")
    return claims.Finding(verdict, summary, claims.markdown_table(
        ["model", "baseline", "params (M)", "K", "1x1Conv", "params (M)", "paper (ImageNet)"], table))


def figure(rows, path, meta):
    stats = claims.arms(rows, "test_accuracy", ("net", "k"))
    panels = {}
    for net in NETS:
        points = [(int(k), s) for (n, k), s in stats.items() if n == net]
        if points:
            panels[f"{TITLE[net]} on {meta['dataset']}"] = {"1x1Conv": points}
    c.line_figure(path, {}, title="", xlabel="number of modified layers", panels=panels or {"no rows": {}})


RECIPE = Recipe(
    id="imagenet-1x1",
    title="1x1Conv in the last layers of five ImageNet families",
    paper="B, Table 4, Figs. 8-9 (§4.3, App. A.5)",
    claim="The last layers of ResNet-152, ResNet-50, VGG-16, MobileNetV2 and SqueezeNet can become 1×1 "
          "convolutions with no loss of accuracy, and with fewer parameters.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference=c.PAPER_REFERENCE,
)
