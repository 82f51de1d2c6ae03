"""compute-cost: paper A's earlier version (002), Figs. 3 and 6. Training seconds per epoch,
and seconds per trainable parameter, of separable ResNets (Fig. 3) and ConvMixers (Fig. 6)
in full / chans / space mode over depths, on the backend the run uses (its `backend` column).

Claims, each checked at every (model, depth):
  (a) the frozen modes train faster: full takes longer per epoch than chans and than space;
  (b) chans has a lower time per trainable parameter than full;
  (c) on the ConvMixer, freezing spatial mixing (chans) saves more time than freezing channel
      mixing (space): chans trains faster than space.

How the cpu scale was chosen (written before its first run, not changed after):
- Models: the cpu miniatures the accuracy recipes train, so the timings belong to them:
  resnet-mixing's separable ResNet (width 16, d = 9, k = 3) and convmixer-mixing's cpu
  ConvMixer (read from that recipe, so a change of its patch size follows here), both at
  depths 1 and 2 (ResNet-8/14; ConvMixer-64/1 and /2). 2 models × 2 depths × 3 modes × 2
  seeds = 24 cells. The paper's depths are larger; timing needs no depth the budget forbids.
- Budget: 3 epochs of batch 128 on `textures`, each model's own schedule. A ConvMixer epoch
  is the whole train split (4200 images, 33 steps); a ResNet epoch is 16 steps (2048
  images, the row's `steps_per_epoch`). `train_s_per_epoch` is the median of epochs 2-3
  (epoch 1 carries the warm-up), measured without the per-epoch test pass
  (tasks.train_classifier(validate=False)). `us_per_param` = train_s_per_epoch / trainable
  parameters, in µs. Every claim compares modes of one model, never the two models.
- Re-chosen once, for time only: the first budget gave the ResNet full 33-step epochs too
  (estimated at 5 minutes idle). Its one run on a quiet host took 705 s, over the 10-minute
  limit, 540 s of it in the ResNet cells, so the ResNet epoch was cut to 16 steps (~270 s
  saved). The ConvMixer cells, grid, seeds and thresholds are unchanged.
- Thresholds: (a) holds when full − frozen exceeds the two arms' combined seed spread and
  is at least min_saving = 5 % of full's time ("significantly longer"); it does not hold when
  separated but smaller (or negative). (b) and (c) hold when the ordering is beyond the
  combined spread, and do not hold when the reverse ordering is. Otherwise inconclusive.
  The recipe's verdict holds if every check holds and does not hold if any does not.
- The host is shared: timings of a busy machine are noisy, so the cells of one (model,
  depth) run back to back (mode is the last grid axis), and the spread over seeds is what
  separates arms.

    spatialmix run compute-cost                        # cpu scale, 24 cells, 2 seeds
"""


from recipes.core import claims
from recipes.core.budget import cpu_budget
from recipes.core.choices import MODES
from recipes.core.engine import Recipe, Scale
from recipes.paper_a import _common

THRESHOLDS = claims.Thresholds(
    min_saving=claims.Threshold(0.05, "a frozen mode trains faster: full − frozen at least this fraction of "
                                      "full's time per epoch, beyond the seed spread", unit="%"),
)
MODELS = ("sep_resnet", "convmixer")
LABELS = {"sep_resnet": "separable ResNet", "convmixer": "ConvMixer"}
COLOURS = {"full": "tab:blue", "chans": "tab:red", "space": "tab:green"}


def _models(resnet, convmixer):
    return {"sep_resnet": {k: v for k, v in resnet.items() if k != "arch"} | {"arch": resnet["arch"]},
            "convmixer": {**convmixer, "arch": "convmixer"}}


SCALES = {
    "smoke": Scale(
        dataset="digits", grid={"model": list(MODELS), "depth": [1], "mode": list(MODES)}, seeds=(0,),
        model=_models(_common.RESNET_SMOKE_MODEL, _common.CONVMIXER_SMOKE_MODEL),
        budget={"epochs": 2, "steps_per_epoch": 2, "batch_size": 32, "lr": 0.01, "weight_decay": 1e-4},
        datasets=("textures",),
    ),
    "cpu": Scale(
        dataset="textures", grid={"model": list(MODELS), "depth": [1, 2], "mode": list(MODES)}, seeds=(0, 1),
        model=_models(_common.RESNET_CPU_MODEL, _common.CONVMIXER_CPU_MODEL),
        # 3 epochs, no fewer (the timing is the median of epochs 2-3): the rule only checks that they fit
        budget=cpu_budget({"epochs": 3, "batch_size": 128, "lr": {"sep_resnet": 0.1, "convmixer": 0.01},
                           "weight_decay": {"sep_resnet": 1e-4, "convmixer": 0.01},
                           "steps_per_epoch": {"sep_resnet": 16, "convmixer": None}}, "compute-cost", "textures",
                          min_epochs=3),
        datasets=("digits",),
        note="cpu scale: 14-class textures, 3 epochs of batch 128 per cell (a ResNet epoch is 16 steps, a "
             "ConvMixer epoch the whole train split), seconds per epoch the median of epochs 2-3 without a test "
             "pass. Models: the cpu miniatures of resnet-mixing (separable ResNet, "
             "width 16, d=9, k=3) and convmixer-mixing (its cpu ConvMixer), depths 1 and 2.",
    ),
    "paper": Scale(
        dataset="cifar10", grid={"model": list(MODELS), "depth": [2, 4, 8], "mode": list(MODES)}, seeds=(0,),
        model=_models(_common.RESNET_PAPER_MODEL, _common.CONVMIXER_PAPER_MODEL),
        budget={"epochs": 3, "batch_size": 128, "lr": {"sep_resnet": 0.1, "convmixer": 0.01},
                "weight_decay": {"sep_resnet": 1e-4, "convmixer": 0.01}, "augment": True},
        datasets=("cifar100",),
        note="paper scale: CIFAR-10 (002's Figs. 3 and 6), separable ResNet (width 16, d=9, k=3) and the paper's "
             "ConvMixer (w=128, k=8, p=1), depths 2, 4, 8, 3 epochs each (the timing needs no more).",
    ),
}


def run_cell(cell):
    from recipes.core.tasks import train_classifier

    name = cell.config["model"]
    config = dict(cell.model[name])
    arch = config.pop("arch")
    family = "resnet" if name == "sep_resnet" else "convmixer"
    metrics = train_classifier(_for_model(cell, name), arch,
                               {**config, "depth": int(cell.config["depth"]), "mode": cell.config["mode"]},
                               family=family, validate=False)
    # in microseconds: results.csv keeps 6 decimals, which would leave seconds per parameter 2 digits
    metrics["us_per_param"] = 1e6 * metrics["train_s_per_epoch"] / max(metrics["params_trainable"], 1)
    return metrics


class _ModelCell:
    """The cell as train_classifier sees it: the budget's per-model lr and weight decay resolved."""

    def __init__(self, cell, name):
        self._cell, self._name = cell, name

    def __getattr__(self, attr):
        return getattr(self._cell, attr)

    @property
    def budget(self):
        return {k: (v[self._name] if isinstance(v, dict) else v) for k, v in self._cell.budget.items()}


def _for_model(cell, name):
    return _ModelCell(cell, name)


def _saving_verdict(full, frozen, t):
    """full − frozen ≥ min_saving × full, beyond the seed spread."""
    return claims.beats(full, frozen, t.min_saving * full[0]), full[0] - frozen[0]


def _order_verdict(lower, higher):
    """holds if lower < higher beyond the combined spread, does not hold if the reverse."""
    return claims.beats(higher, lower)


def check(rows, t=THRESHOLDS.at()):
    times = claims.arms(rows, "train_s_per_epoch", ("model", "depth", "mode"))
    r = claims.arms(rows, "us_per_param", ("model", "depth", "mode"))
    table, notes, verdicts = [], [], []
    for model in MODELS:
        for depth in sorted({int(d) for m, d, _ in times if m == model}):
            arm = {mode: times.get((model, str(depth), mode)) for mode in MODES}
            per = {mode: r.get((model, str(depth), mode)) for mode in MODES}
            if None in arm.values() or None in per.values():
                continue
            a_chans, s_chans = _saving_verdict(arm["full"], arm["chans"], t)
            a_space, s_space = _saving_verdict(arm["full"], arm["space"], t)
            b = _order_verdict(per["chans"], per["full"])
            found = [a_chans, a_space, b]
            line = (f"{LABELS[model]} depth {depth}: full−chans {s_chans:+.2f} s ({a_chans}), full−space "
                    f"{s_space:+.2f} s ({a_space}), s/param chans < full: {b}")
            c = "–"
            if model == "convmixer":
                c = _order_verdict(arm["chans"], arm["space"])
                found.append(c)
                line += f", chans faster than space: {c}"
            verdicts += found
            notes.append(line)
            table.append([LABELS[model], depth, *(f"{arm[m][0]:.2f} ± {arm[m][1]:.2f}" for m in MODES),
                          *(f"{per[m][0]:.2f}" for m in MODES), arm["full"][2]])
    if not verdicts:
        return claims.Finding(claims.INCONCLUSIVE, "no (model, depth) has all three modes finished yet.")
    backends = sorted({row.get("backend", "?") for row in rows})
    summary = (f"Training seconds per epoch (mean ± spread over seeds) on backend {', '.join(backends)}; "
               f"'faster' needs a saving beyond the seed spread and ≥ {100 * t.min_saving:.0f} % of full. "
               + "; ".join(notes) + ".")
    header = ["model", "depth", "s/epoch full", "s/epoch chans", "s/epoch space",
              "µs/param full", "µs/param chans", "µs/param space", "seeds"]
    return claims.Finding(claims.combine(verdicts), summary, claims.markdown_table(header, table))


def figure(rows, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = claims.arms(rows, "train_s_per_epoch", ("model", "depth", "mode"))
    r = claims.arms(rows, "us_per_param", ("model", "depth", "mode"))
    backend = meta.get("backend", "?")
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), dpi=120)
    width = 0.27
    for row, model in enumerate(MODELS):
        depths = sorted({int(d) for m, d, _ in t if m == model})
        steps = sorted({int(float(x["steps_per_epoch"])) for x in rows
                        if x["model"] == model and x.get("steps_per_epoch") not in (None, "")})
        epoch = f"epoch of {steps[0]} steps" if len(steps) == 1 else "epoch"
        for col, (stats, scale, ylabel) in enumerate(((t, 1.0, f"train time per {epoch} (s)"),
                                                      (r, 1.0, "train time per trainable param (µs)"))):
            ax = axes[row][col]
            for i, mode in enumerate(MODES):
                points = [(j, stats[(model, str(d), mode)]) for j, d in enumerate(depths) if (model, str(d), mode) in stats]
                if points:
                    ax.bar([j + (i - 1) * width for j, _ in points], [scale * s[0] for _, s in points], width,
                           yerr=[scale * s[1] for _, s in points], capsize=3, color=COLOURS[mode],
                           label=mode.capitalize())
            ax.set_xticks(range(len(depths)))
            ax.set_xticklabels([str(d) for d in depths])
            ax.set_xlabel("depth" + (" n (6n+2 layers)" if model == "sep_resnet" else ""))
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(f"{LABELS[model]}", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=7)
    fig.suptitle(f"Compute cost on {meta['dataset']}, backend {backend} ({meta['scale']} scale)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


RECIPE = Recipe(
    id="compute-cost",
    title="Training time of learned vs frozen mixing",
    paper="A (earlier version), Figs. 3 and 6",
    claim="Models with frozen spatial or channel mixing train faster than fully learned ones; chans has a lower "
          "training time per trainable parameter than full; on the ConvMixer, freezing spatial mixing saves "
          "more time than freezing channel mixing.",
    metric="train_s_per_epoch",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference="the schedules of resnet-mixing (He et al. 2016b) and convmixer-mixing (locuslab/convmixer-cifar10); "
              "only the time per epoch is the result.",
)
