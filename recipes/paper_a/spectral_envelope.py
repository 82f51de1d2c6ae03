"""spectral-envelope: paper A, Figs. 1 and 8 (§3.1, §4.3.3). The spectral envelope of a bank
of random k×k filters (max over the bank of |FFT| of each filter zero-padded to 512×512,
zero frequency centred; recipes.core.spectra) as the bank grows, raw and smoothed.

Claims: coverage grows fast with the number of uncorrelated filters (Fig. 1); smoothing
the filters removes the high frequencies of the envelope (Fig. 8).

Runbook:
    spatialmix run spectral-envelope                 # cpu scale: k=5, banks 1..64, 3 seeds; seconds
    spatialmix run spectral-envelope --scale paper   # k=8 (the paper's CIFAR ConvMixer), banks 1..256

Seeds at paper scale: 3 (0, 1, 2), as at cpu scale: the claims are read beyond the seed
spread, and a cell is a few FFTs. Remaining departures from the text: the kernel size, the
bank sizes of Fig. 1 and the smoothing strength of Fig. 8 are not in the text (k = 8, the
paper's CIFAR ConvMixer kernel; banks 1-256; std 1 px); "rapidly grows" is read as half the
growth by 8 filters.

No training and no data: the cells only draw filters (zoo.filters, seeded NumPy) and take
FFTs. The scale's dataset (`digits`) is a placeholder the engine requires; it is not read.
Filters are the zoo's: `random` is U(-1/k, 1/k) per tap, `smoothed` the same draws
Gaussian-filtered (std `smoothing` px) and rescaled to their original L2 norm.

Numbers per cell: `coverage` (fraction of the frequency plane within 6 dB of the
envelope's peak), `low_share` / `high_share` (envelope energy inside / outside radius
0.25 cycles/pixel). Definitions in recipes.core.spectra.
"""

from recipes.core import claims
from recipes.core.engine import Recipe, Scale

# Chosen before any run.
FAST_BANK = 8
THRESHOLDS = claims.Thresholds(
    growth=claims.Threshold(0.25, "coverage grows: the largest random bank's coverage minus one filter's, at "
                                  "least this (absolute), beyond the seed spread"),
    fast_fraction=claims.Threshold(0.5, f"fast: at {FAST_BANK} filters at least this fraction of that growth is "
                                        "already there", unit="%"),
    high_ratio=claims.Threshold(0.5, "smoothing removes the high frequencies: at the largest bank the smoothed "
                                     "envelope's high-frequency energy share at most this times the raw one's, "
                                     "beyond the seed spread", unit="×"),
)
KINDS = ("random", "smoothed")

SCALES = {
    "smoke": Scale(
        dataset="digits", grid={"filters": list(KINDS), "bank": [1, 8]}, seeds=(0,),
        model={"kernel_size": 3, "smoothing": 1.0}, budget={},
        note="smoke scale: two bank sizes of 3×3 filters, one seed.",
    ),
    "cpu": Scale(
        dataset="digits", grid={"filters": list(KINDS), "bank": [1, 2, 4, 8, 16, 32, 64]}, seeds=(0, 1, 2),
        model={"kernel_size": 5, "smoothing": 1.0}, budget={},
        note="cpu scale: banks of 1-64 random 5×5 filters (the cpu-scale ConvMixers' kernel), raw and "
             "smoothed (Gaussian std 1 px), 3 seeds. No data is read (the dataset is the engine's placeholder).",
    ),
    "paper": Scale(
        dataset="digits", grid={"filters": list(KINDS), "bank": [1, 2, 4, 8, 16, 32, 64, 128, 256]},
        seeds=(0, 1, 2), model={"kernel_size": 8, "smoothing": 1.0}, budget={},
        note="paper scale: 8×8 filters, the kernel of the paper's CIFAR ConvMixer; the paper does not give "
             "the kernel size or the bank sizes of Fig. 1, nor its smoothing strength. No data is read.",
    ),
}


def _kernel(kind, bank, seed, model):
    from zoo.filters import spatial_filters

    return spatial_filters(kind, model["kernel_size"], bank, 1, seed=seed, smoothing=model["smoothing"])


def run_cell(cell):
    from recipes.core import spectra

    kernel = _kernel(cell.config["filters"], int(cell.config["bank"]), cell.seed, cell.model)
    return {k: round(v, 6) for k, v in spectra.summary(kernel).items()}


def check(rows, t=THRESHOLDS.at()):
    cov = claims.arms(rows, "coverage", ("filters", "bank"))
    high = claims.arms(rows, "high_share", ("filters", "bank"))
    banks = sorted({int(b) for k, b in cov if k == "random"})
    table = [[b, claims.pct(cov[("random", str(b))]),
              claims.pct(cov[("smoothed", str(b))]) if ("smoothed", str(b)) in cov else "–",
              claims.pct(high[("random", str(b))]),
              claims.pct(high[("smoothed", str(b))]) if ("smoothed", str(b)) in high else "–"]
             for b in banks]
    header = ["bank", "coverage raw", "coverage smoothed", "high-freq share raw", "high-freq share smoothed"]
    if len(banks) < 2 or ("smoothed", str(banks[-1])) not in high:
        return claims.Finding(claims.INCONCLUSIVE, "need at least two random bank sizes and the smoothed largest bank.",
                       claims.markdown_table(header, table) if table else "")
    first, last = cov[("random", str(banks[0]))], cov[("random", str(banks[-1]))]
    growth = last[0] - first[0]
    if not claims.separated(last, first):
        grows = claims.INCONCLUSIVE
    else:
        grows = claims.HOLDS if growth >= t.growth else claims.DOES_NOT_HOLD
    mid_bank = max((b for b in banks if b <= FAST_BANK), default=banks[0])
    mid = cov[("random", str(mid_bank))]
    fast_fraction = (mid[0] - first[0]) / growth if growth > 0 else 0.0
    fast = claims.HOLDS if fast_fraction >= t.fast_fraction else claims.DOES_NOT_HOLD
    raw, smooth = high[("random", str(banks[-1]))], high[("smoothed", str(banks[-1]))]
    ratio = smooth[0] / raw[0] if raw[0] > 0 else float("inf")
    if not claims.separated(raw, smooth):
        removes = claims.INCONCLUSIVE
    else:
        removes = claims.HOLDS if ratio <= t.high_ratio else claims.DOES_NOT_HOLD
    summary = (f"Coverage (fraction of frequencies within 6 dB of the envelope's peak) of random banks grows "
               f"from {claims.pct(first)} (1 filter) to {claims.pct(last)} ({banks[-1]} filters): "
               f"+{100 * growth:.1f} pts, needs ≥ {100 * t.growth:.0f} ({grows}); at {mid_bank} filters "
               f"{100 * fast_fraction:.0f} % of that growth is there, needs ≥ {100 * t.fast_fraction:.0f} % "
               f"({fast}). High-frequency energy share (radius ≥ 0.25 cycles/px) at {banks[-1]} filters: "
               f"raw {claims.pct(raw)}, smoothed {claims.pct(smooth)}, ratio {ratio:.3f}, needs ≤ {t.high_ratio} "
               f"({removes}).")
    return claims.Finding(claims.combine([grows, fast, removes]), summary, claims.markdown_table(header, table))


def figure(rows, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recipes.core import spectra

    model = SCALES[meta["scale"]].model
    banks = sorted({int(r["bank"]) for r in rows})
    kinds = [k for k in KINDS if any(r["filters"] == k for r in rows)]
    seed = min(int(r["seed"]) for r in rows)
    fig = plt.figure(figsize=(1.3 * len(banks) + 0.6, 1.4 * len(kinds) + 2.6), dpi=120)
    grid = fig.add_gridspec(len(kinds) + 1, len(banks), height_ratios=[1] * len(kinds) + [1.7])
    for i, kind in enumerate(kinds):
        for j, n in enumerate(banks):
            ax = fig.add_subplot(grid[i, j])
            spectra.show(ax, spectra.envelope(_kernel(kind, n, seed, model)),
                         f"{n} filter{'s' if n > 1 else ''}" if i == 0 else None)
            if j == 0:
                ax.set_ylabel("raw" if kind == "random" else f"smoothed (σ={model['smoothing']})", fontsize=8)
    ax = fig.add_subplot(grid[len(kinds), :])
    cov = claims.arms(rows, "coverage", ("filters", "bank"))
    high = claims.arms(rows, "high_share", ("filters", "bank"))
    for kind, colour in zip(kinds, ("tab:blue", "tab:orange")):
        pts = sorted((int(b), s) for (k, b), s in cov.items() if k == kind)
        ax.errorbar([b for b, _ in pts], [100 * s[0] for _, s in pts], yerr=[100 * s[1] for _, s in pts],
                    marker="o", capsize=3, color=colour, label=f"coverage, {'raw' if kind == 'random' else 'smoothed'}")
        pts = sorted((int(b), s) for (k, b), s in high.items() if k == kind)
        ax.errorbar([b for b, _ in pts], [100 * s[0] for _, s in pts], yerr=[100 * s[1] for _, s in pts],
                    marker="s", ls="--", capsize=3, color=colour,
                    label=f"high-freq energy, {'raw' if kind == 'random' else 'smoothed'}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(banks, [str(b) for b in banks])
    ax.set_xlabel("filters in the bank")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center right")
    fig.suptitle(f"Spectral envelopes of random {model['kernel_size']}×{model['kernel_size']} filters "
                 f"(seed {seed}; curves: mean ± spread over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


RECIPE = Recipe(
    id="spectral-envelope",
    title="Spectral envelopes of random filter banks, raw and smoothed",
    paper="A, Figs. 1 and 8 (§3.1, §4.3.3)",
    claim="The spectral envelope of a bank of random filters rapidly grows as uncorrelated filters are added "
          "(Fig. 1); smoothing the filters removes the high-frequency part of the envelope (Fig. 8).",
    metric="coverage",
    scales=SCALES,
    run_cell=run_cell,
    figure=figure,
    check=check,
    thresholds=THRESHOLDS,
    reference="paper A footnote 1: max over the bank of |FFT| of each filter zero-padded to 512×512, "
              "zero frequency centred.",
)
