"""What paper A's recipes share: the separable ResNet and ConvMixer at each scale, their
training recipes, the mixing claim (chans ≈ full ≫ space) and the accuracy line figure.
(A module whose name starts with `_` is not a recipe.)

The separable ResNet (§3.2): identity-mapping ResNet (He et al. 2016b), every conv a
depthwise k×k with depth multiplier d = 9 and a 1×1 conv. The ConvMixer (Trockman &
Kolter), as the paper uses it on CIFAR: width 128, kernel 8, patch 1.
"""

from recipes.core import claims
from recipes.core.choices import MODES

# ---------------------------------------------------------------------------- separable ResNet
# The paper's ResNet schedule (He et al. 2016b): 64k iterations of batch 128 on CIFAR's 50k
# images = 164 epochs, lr /10 at 32k and 48k (50 % and 75 %); ImageNet 90 epochs of batch 256,
# lr /10 at epochs 30 and 60.
RESNET_PAPER_MODEL = {"arch": "sep_resnet_cifar", "width": 16, "depth_multiplier": 9, "kernel_size": 3}
RESNET_PAPER_BUDGET = {"epochs": 164, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4, "augment": True}
RESNET_IMAGENET = {"model": {"arch": "sep_resnet_imagenet", "width": 64},
                   "budget": {"epochs": 90, "batch_size": 256, "milestones": (1 / 3, 2 / 3)}}
# cpu: the paper's CIFAR model unchanged, He et al.'s schedule cut to a few epochs on textures
RESNET_CPU_MODEL = dict(RESNET_PAPER_MODEL)
RESNET_CPU_BUDGET = {"epochs": 3, "batch_size": 128, "lr": 0.1, "weight_decay": 1e-4}
RESNET_SMOKE_MODEL = {"arch": "sep_resnet_cifar", "width": 4, "depth_multiplier": 2, "kernel_size": 3}
RESNET_SMOKE_BUDGET = {"epochs": 1, "steps_per_epoch": 3, "batch_size": 32, "lr": 0.05, "weight_decay": 1e-4}
RESNET_REFERENCE = ("He et al. 2016b (identity-mapping ResNets): SGD, momentum 0.9, weight decay 1e-4 (coupled L2, "
                    "as Torch's SGD applies it: recipes.core.train.CoupledSGD); "
                    "CIFAR batch 128, lr 0.1 /10 at 32k and 48k iterations, stop at 64k (164 epochs), "
                    "random crop (4 px) + flip; ImageNet batch 256, lr 0.1 /10 at epochs 30 and 60, 90 epochs.")

# ---------------------------------------------------------------------------- ConvMixer
CONVMIXER_SMOKE_MODEL = {"width": 16, "kernel_size": 3, "patch_size": 1}
CONVMIXER_CPU_MODEL = {"width": 64, "kernel_size": 5, "patch_size": 1}   # the paper's patch; width, kernel for 16×16
CONVMIXER_PAPER_MODEL = {"width": 128, "kernel_size": 8, "patch_size": 1}       # 001 §4.2
CONVMIXER_IMAGENET_MODEL = {"width": 512, "kernel_size": 8, "patch_size": 7}
CONVMIXER_PAPER_BUDGET = {"epochs": 25, "batch_size": 512, "lr": 0.01, "weight_decay": 0.01, "augment": True}
CONVMIXER_REFERENCE = ("locuslab/convmixer-cifar10 (AdamW with decoupled weight decay 0.01, batch 512, 25 epochs, "
                       "the global gradient norm clipped to 1.0, one-cycle lr_max 0.01); ImageNet: locuslab/convmixer "
                       "(150 epochs, batch 640).")


def train_resnet(cell, mode, depth, **extra):
    """Train the scale's separable ResNet (`arch` picks the CIFAR or ImageNet variant)."""
    from recipes.core.tasks import train_classifier

    config = dict(cell.model)
    arch = config.pop("arch")
    return train_classifier(cell, arch, {**config, "depth": int(depth), "mode": mode, **extra}, family="resnet")


# ---------------------------------------------------------------------------- the mixing claim
# Chosen before any run, from the paper's gaps (chans within ~1-2 points of full on CIFAR,
# space far behind).
MIXING_THRESHOLDS = claims.Thresholds(
    close=claims.Threshold(0.03, "chans ≈ full: full − chans at most this"),
    far=claims.Threshold(0.05, "chans ≫ space: chans − space at least this, beyond the seed spread"),
)


def mixing_verdict(arm, t):
    """chans ≈ full ≫ space at one depth; `arm` maps mode -> (mean, spread, n). (verdict, why)."""
    full, chans, space = arm["full"], arm["chans"], arm["space"]
    if claims.at_ceiling(full, chans, space):
        return claims.INCONCLUSIVE, "all arms at the ceiling"
    near, apart = claims.within(full, chans, t.close), claims.beats(chans, space, t.far)
    return claims.combine([near, apart]), (f"full−chans {100 * (full[0] - chans[0]):+.1f} pts (≈: {near}), "
                                           f"chans−space {100 * (chans[0] - space[0]):+.1f} pts (≫: {apart})")


def mixing_check(rows, t, params=False):
    """The mixing claim at every depth that has all three modes; `params` adds the trainable
    parameter counts to the table."""
    stats = claims.arms(rows, "test_accuracy", ("depth", "mode"))
    verdicts, table, notes = [], [], []
    for d in sorted({int(d) for d, _ in stats}):
        arm = {m: stats.get((str(d), m)) for m in MODES}
        if None in arm.values():
            continue
        v, why = mixing_verdict(arm, t)
        verdicts.append(v)
        notes.append(f"depth {d}: {v} ({why})")
        counts = [" / ".join(f"{trainable_params(rows, d, m):,}" for m in MODES)] if params else []
        table.append([d, *(claims.pct(arm[m]) for m in MODES), *counts, arm["full"][2]])
    if not verdicts:
        return claims.Finding(claims.INCONCLUSIVE, "no depth has all three modes finished yet.")
    summary = (f"Test accuracy, mean ± spread over seeds. ≈ means full−chans ≤ {100 * t.close:.0f} pts; "
               f"≫ means chans−space ≥ {100 * t.far:.0f} pts and beyond the seed spread. " + "; ".join(notes) + ".")
    header = ["depth", "full", "chans", "space",
              *(["trainable params (full / chans / space)"] if params else []), "seeds"]
    return claims.Finding(claims.combine(verdicts), summary, claims.markdown_table(header, table))


def trainable_params(rows, depth, mode, key="params_trainable"):
    for r in rows:
        if str(r.get("depth")) == str(depth) and r.get("mode") == mode and r.get(key) not in (None, ""):
            return int(float(r[key]))
    return 0


# ---------------------------------------------------------------------------- figures

def line_figure(rows, path, title, x_key, x_label, series, colours, labels, log_x=False, metric="test_accuracy",
                y_label="test accuracy (%)"):
    """`metric` (mean ± spread over seeds, in %) against `x_key`, one line per series value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series_key, series_values = series
    stats = claims.arms(rows, metric, (x_key, series_key))
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for value, colour, label in zip(series_values, colours, labels):
        points = sorted((float(x), s) for (x, v), s in stats.items() if v == value)
        if points:
            ax.errorbar([x for x, _ in points], [100 * s[0] for _, s in points],
                        yerr=[100 * s[1] for _, s in points], marker="o", capsize=3, label=label, color=colour)
    xs = sorted({float(x) for x, _ in stats})
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


MODE_COLOURS = ("tab:blue", "tab:red", "tab:green")


def mode_figure(rows, path, title, x_label="depth"):
    """Test accuracy against depth, one line per mixing mode (Figs. 2 and 5)."""
    line_figure(rows, path, title, "depth", x_label, ("mode", MODES), MODE_COLOURS, [m.capitalize() for m in MODES])
