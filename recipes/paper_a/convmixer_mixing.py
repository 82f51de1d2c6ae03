"""convmixer-mixing: paper A, Fig. 5 (§4.2). ConvMixers that learn everything (full),
only channel mixing (chans: depthwise filters and patch stem frozen at random init), or
only spatial mixing (space: pointwise convs frozen). Claim: chans ≈ full ≫ space.

Patch size at cpu scale: 2, not the paper's 1, for time. Measured again after the fast ops
(2026-11-27, torch, batch 128 on 16×16 textures, CPU seconds per training step, which a
busy host does not inflate): the six arms (3 modes × depths 2, 4) cost 657 ms per step
in all at p=2 and 1870 ms at p=1, 2.85×. The 12-cell p=2 run took 280 s, so a p=1 grid
would take ~740-800 s: it does not fit 10 minutes, and p=2 stays (thresholds unchanged).
"""

from recipes.core import claims
from recipes.core.choices import MODES
from recipes.core.engine import Recipe, Scale, Verdict
# Chosen before any run, from the paper's gaps (chans within ~1-2 points of full on
# CIFAR, space far behind): "≈" is a gap of at most CLOSE, "≫" a margin of at least FAR.
CLOSE, FAR = 0.03, 0.05

SCALES = {
    "smoke": Scale(
        dataset="digits", grid={"mode": list(MODES), "depth": [1]}, seeds=(0,),
        model={"width": 16, "kernel_size": 3, "patch_size": 1},
        budget={"epochs": 2, "steps_per_epoch": 4, "batch_size": 64, "lr": 0.01, "weight_decay": 0.01},
        datasets=("textures", "digits32"),
    ),
    "cpu": Scale(
        dataset="textures", grid={"mode": list(MODES), "depth": [2, 4]}, seeds=(0, 1),
        model={"width": 64, "kernel_size": 5, "patch_size": 2},
        budget={"epochs": 8, "batch_size": 128, "lr": 0.01, "weight_decay": 0.01},
        datasets=("digits", "digits32"),
        note="cpu scale: 14-class textures (16×16 grayscale patches), ConvMixer-64 (k=5, p=2), "
             "the reference's AdamW one-cycle schedule scaled to 8 epochs of batch 128 (to fit 10 minutes on 2 cores).",
    ),
    "paper": Scale(
        dataset="cifar10", grid={"mode": list(MODES), "depth": [2, 4, 8, 16]}, seeds=(0,),
        model={"width": 128, "kernel_size": 8, "patch_size": 1},
        budget={"epochs": 25, "batch_size": 512, "lr": 0.01, "weight_decay": 0.01, "augment": True},
        datasets=("cifar100", "imagenet2012"),
        overrides={"imagenet2012": {"model": {"width": 512, "kernel_size": 8, "patch_size": 7},
                                    "budget": {"epochs": 150, "batch_size": 640}}},
        note="paper scale: the paper's ConvMixers (CIFAR w=128, k=8, p=1; ImageNet w=512, k=8, p=7). "
             "Augmentation here is random crop + flip; the reference's RandAugment, colour jitter and "
             "random erasing are not applied. The depths of the paper's Fig. 5 are not given in its text.",
    ),
}


def run_cell(cell):
    from recipes.core.tasks import train_classifier

    return train_classifier(cell, "convmixer", {**cell.model, "depth": cell.config["depth"],
                                                "mode": cell.config["mode"]}, family="convmixer")


def check(rows):
    stats = claims.arms(rows, "test_accuracy", ("depth", "mode"))
    depths = sorted({int(d) for d, _ in stats}, key=int)
    verdicts, table, notes = [], [], []
    for d in depths:
        arm = {m: stats.get((str(d), m)) for m in MODES}
        if None in arm.values():
            continue
        full, chans, space = arm["full"], arm["chans"], arm["space"]
        gap, margin = full[0] - chans[0], chans[0] - space[0]
        if claims.at_ceiling(full, chans, space):
            v, why = "inconclusive", "all arms at the ceiling"
        else:
            close = "holds" if gap <= CLOSE else ("does not hold" if claims.separated(full, chans) else "inconclusive")
            far = ("inconclusive" if not claims.separated(chans, space)
                   else "holds" if margin >= FAR else "does not hold")
            v = "does not hold" if "does not hold" in (close, far) else ("holds" if close == far == "holds" else "inconclusive")
            why = f"full−chans {100 * gap:+.1f} pts (≈: {close}), chans−space {100 * margin:+.1f} pts (≫: {far})"
        verdicts.append(v)
        notes.append(f"depth {d}: {v} ({why})")
        table.append([d, claims.pct(full), claims.pct(chans), claims.pct(space), full[2]])
    if not verdicts:
        return Verdict("inconclusive", "no depth has all three modes finished yet.")
    overall = ("does not hold" if "does not hold" in verdicts
               else "holds" if all(v == "holds" for v in verdicts) else "inconclusive")
    summary = (f"Test accuracy, mean ± spread over seeds. ≈ means full−chans ≤ {100 * CLOSE:.0f} pts; "
               f"≫ means chans−space ≥ {100 * FAR:.0f} pts and beyond the seed spread. " + "; ".join(notes) + ".")
    header = ["depth", "full", "chans", "space", "seeds"]
    return Verdict(overall, summary, claims.markdown_table(header, table))


def figure(rows, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = claims.arms(rows, "test_accuracy", ("depth", "mode"))
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for mode, colour in zip(MODES, ("tab:blue", "tab:red", "tab:green")):
        points = sorted((int(d), s) for (d, m), s in stats.items() if m == mode)
        if points:
            ax.errorbar([d for d, _ in points], [100 * s[0] for _, s in points],
                        yerr=[100 * s[1] for _, s in points], marker="o", capsize=3, label=mode.capitalize(),
                        color=colour)
    ax.set_xticks(sorted({int(d) for d, _ in stats}))
    ax.set_xlabel("depth")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"ConvMixer on {meta['dataset']} ({meta['scale']} scale)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


RECIPE = Recipe(
    id="convmixer-mixing",
    title="ConvMixer: learned vs frozen spatial and channel mixing",
    paper="A, Fig. 5 (§4.2)",
    claim="ConvMixers that learn only channel mixing (chans) are competitive with fully learned ones "
          "(full), and far ahead of those that learn only spatial mixing (space): chans ≈ full ≫ space.",
    metric="test_accuracy",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    reference="locuslab/convmixer-cifar10 (AdamW, batch 512, 25 epochs, wd 0.01, clip-norm 1.0, "
              "one-cycle lr_max 0.01); ImageNet: locuslab/convmixer (150 epochs, batch 640).",
)
