"""Paper A beyond accuracy: the five recipes' claim checks (holds / does not hold /
inconclusive on made-up rows) and the [0, 1] textures option."""

import numpy as np

from recipes.core import data
from recipes.paper_a import adversarial_resnets, learned_filters, pixel_unshuffle, smoothed_filters, spectral_envelope


def two_seeds(base, values, spread):
    """Rows for seeds 0 and 1 around `values` (metric -> mean), ± spread."""
    return [{**base, "seed": str(s), **{k: str(v + sign * spread) for k, v in values.items()}}
            for s, sign in ((0, -1), (1, 1))]


# ----------------------------------------------------------------------------- spectral-envelope

def envelope_rows(cov64, high_smoothed, spread=0.01):
    rows = []
    for bank, cov in ((1, 0.35), (8, 0.80), (64, cov64)):
        rows += two_seeds({"filters": "random", "bank": str(bank)}, {"coverage": cov, "high_share": 0.8}, spread)
        rows += two_seeds({"filters": "smoothed", "bank": str(bank)}, {"coverage": 0.2, "high_share": high_smoothed},
                          spread)
    return rows


def test_spectral_envelope_check():
    assert spectral_envelope.check(envelope_rows(0.99, 0.30)).verdict == "holds"
    assert spectral_envelope.check(envelope_rows(0.99, 0.60)).verdict == "does not hold"   # smoothing keeps highs
    assert spectral_envelope.check(envelope_rows(0.45, 0.30)).verdict == "does not hold"   # coverage barely grows
    assert spectral_envelope.check(envelope_rows(0.99, 0.30, spread=0.4)).verdict == "inconclusive"
    assert spectral_envelope.check([]).verdict == "inconclusive"


# ----------------------------------------------------------------------------- smoothed-filters

def smoothed_rows(raw_robust, smooth_robust, smooth_clean=0.70, spread=0.01):
    rows = []
    for kind, clean, robust in (("random", 0.70, raw_robust), ("smoothed", smooth_clean, smooth_robust)):
        rows += two_seeds({"filters": kind}, {"test_accuracy": clean, "fgsm_eps0": clean, "fgsm_eps4": robust,
                                              "pgd_eps0": clean, "pgd_eps4": robust - 0.02}, spread)
    return rows


def test_smoothed_filters_check():
    v = smoothed_filters.check(smoothed_rows(0.30, 0.40))
    assert v.verdict == "holds" and "+33 %" in v.summary and "FGSM ε=4/255" in v.table
    assert smoothed_filters.check(smoothed_rows(0.30, 0.33)).verdict == "does not hold"    # +10 % < +25 %
    assert smoothed_filters.check(smoothed_rows(0.30, 0.40, smooth_clean=0.60)).verdict == "does not hold"
    assert smoothed_filters.check(smoothed_rows(0.30, 0.40, spread=0.08)).verdict == "inconclusive"
    assert smoothed_filters.check([]).verdict == "inconclusive"


# ----------------------------------------------------------------------------- adversarial-resnets

def adversarial_rows(std_gap, adv_gap, spread=0.005, space=None):
    """full at 40 % under attack, chans `std_gap` / `adv_gap` above it; with `space` =
    (standard, fgsm) gaps of chans over space, space rows too."""
    rows = []
    for i, (training, gap) in enumerate((("standard", std_gap), ("fgsm", adv_gap))):
        arms = [("full", 0.40), ("chans", 0.40 + gap)]
        if space is not None:
            arms.append(("space", 0.40 + gap - space[i]))
        for mode, acc in arms:
            rows += two_seeds({"depth": "1", "mode": mode, "training": training},
                              {"test_accuracy": 0.7, "fgsm_eps1": acc, "pgd_eps1": acc - 0.05, "fgsm_eps2": acc - 0.1,
                               "pgd_eps2": acc - 0.15}, spread)
    return rows


def test_adversarial_resnets_check():
    assert adversarial_resnets.check(adversarial_rows(0.10, 0.01)).verdict == "holds"
    assert adversarial_resnets.check(adversarial_rows(-0.05, 0.01)).verdict == "does not hold"  # full more robust
    assert adversarial_resnets.check(adversarial_rows(0.10, 0.08)).verdict == "does not hold"   # gap stays
    assert adversarial_resnets.check(adversarial_rows(0.10, 0.01, spread=0.1)).verdict == "inconclusive"
    assert adversarial_resnets.check([]).verdict == "inconclusive"
    # attacks on a subset: the table's clean columns are that subset's clean accuracy
    subset = [{**r, "attacked_clean_accuracy": "0.55"} for r in adversarial_rows(0.10, 0.01)]
    table = adversarial_resnets.check(subset).table
    assert "clean full (attacked images)" in table and "55.0" in table and "70.0" not in table
    assert "70.0" in adversarial_resnets.check(adversarial_rows(0.10, 0.01)).table


def test_adversarial_resnets_checks_space_where_it_is_trained():
    """Fig. 6: chans is more robust than full *and* than space, and both gaps disappear with
    adversarial training. Without space rows (the cpu grid) only full is read."""
    both = adversarial_resnets.check(adversarial_rows(0.10, 0.01, space=(0.08, 0.0)))
    assert both.verdict == "holds" and "chans − space +8.0 pts (more robust: holds)" in both.summary
    assert "attacked space" in both.table and "chans − space (pts)" in both.table
    space_as_robust = adversarial_resnets.check(adversarial_rows(0.10, 0.01, space=(-0.01, 0.0)))
    assert space_as_robust.verdict == "does not hold" and "more robust: does not hold" in space_as_robust.summary
    space_gap_stays = adversarial_resnets.check(adversarial_rows(0.10, 0.01, space=(0.10, 0.09)))
    assert space_gap_stays.verdict == "does not hold"
    noisy = adversarial_resnets.check(adversarial_rows(0.10, 0.01, space=(0.03, 0.0), spread=0.02))
    assert noisy.verdict == "inconclusive" and "chans − space" in noisy.summary
    assert "attacked space" not in adversarial_resnets.check(adversarial_rows(0.10, 0.01)).table


# ----------------------------------------------------------------------------- learned-filters

def learned_rows(gain, spread=0.01, layer_step=0.10, layers=(1, 2, 3, 4)):
    """Two seeds; layer i's learned low-frequency share is 0.2 + gain + (i − 1)·layer_step."""
    values = {"test_accuracy": 0.6, "low_share_gain": gain}
    for layer in layers:
        values[f"low_share_random_l{layer}"] = 0.2
        values[f"low_share_learned_l{layer}"] = 0.2 + gain + (layer - 1) * layer_step
    return two_seeds({"depth": "4"}, values, spread)


def test_learned_filters_check():
    v = learned_filters.check(learned_rows(0.20))
    assert v.verdict == "holds" and "+20.0" in v.summary
    assert learned_filters.check(learned_rows(0.02)).verdict == "does not hold"     # below MIN_GAIN
    assert learned_filters.check(learned_rows(-0.10)).verdict == "does not hold"    # learned has fewer lows
    assert learned_filters.check(learned_rows(0.03, spread=0.2)).verdict == "inconclusive"
    assert learned_filters.check([]).verdict == "inconclusive"


def test_learned_filters_layers_must_differ():
    """"the filters of each layer seem to follow a different distribution": the most and the
    least low-pass layer differ by ≥ layer_gap beyond the seed spread."""
    alike = learned_filters.check(learned_rows(0.20, layer_step=0.0))
    assert alike.verdict == "does not hold" and "layer 1 − layer 2 +0.0 pts" in alike.summary
    assert "(needs ≥ 5 pts beyond the seed spread: does not hold)" in alike.summary
    near = learned_filters.check(learned_rows(0.20, layer_step=0.02, spread=0.05))   # 6 pts apart, spread 10
    assert near.verdict == "inconclusive"
    apart = learned_filters.check(learned_rows(0.20, layer_step=0.03))
    assert apart.verdict == "holds" and "layer 4 − layer 1 +9.0 pts" in apart.summary


def test_learned_filters_one_seed_cannot_reach_a_verdict_and_paper_scale_has_three():
    one = [r for r in learned_rows(0.30) if r["seed"] == "0"]
    assert learned_filters.check(one).verdict == "inconclusive"
    paper = learned_filters.SCALES["paper"]
    assert len(paper.seeds) >= 2 and paper.grid["depth"] == [4]
    model = paper.model_for("cifar10")
    assert (model["width"], model["kernel_size"], model["patch_size"]) == (128, 8, 1)   # 001 §4.2
    assert paper.model_for("imagenet2012")["width"] == 512


# ----------------------------------------------------------------------------- pixel-unshuffle

def unshuffle_rows(full, chans, spread=0.1):
    rows = []
    for mode, db in (("full", full), ("chans", chans), ("space", chans - 2)):
        rows += two_seeds({"mode": mode, "depth": "4", "width": "64", "kernel_size": "5"},
                          {"test_psnr": db, "scrambled_psnr": 8.0}, spread)
    return rows


def test_pixel_unshuffle_check():
    assert pixel_unshuffle.check(unshuffle_rows(20.6, 20.0)).verdict == "holds"
    assert pixel_unshuffle.check(unshuffle_rows(20.6, 17.0)).verdict == "does not hold"
    assert pixel_unshuffle.check(unshuffle_rows(20.6, 18.6, spread=2.0)).verdict == "inconclusive"
    assert pixel_unshuffle.check([]).verdict == "inconclusive"
    # the table has a space column only when space was trained (the cpu grid has no space arm)
    assert "space (dB)" in pixel_unshuffle.check(unshuffle_rows(20.6, 20.0)).table
    no_space = [r for r in unshuffle_rows(20.6, 20.0) if r["mode"] != "space"]
    assert "space (dB)" not in pixel_unshuffle.check(no_space).table
    assert pixel_unshuffle.check(no_space).verdict == "holds"
    # the floor: models that do no better than handing back the scrambled input un-shuffle nothing
    unlearned = [{**r, "scrambled_psnr": "29.0"} for r in no_space]
    verdict = pixel_unshuffle.check(unlearned)
    assert verdict.verdict == "inconclusive" and "neither beats the scrambled input" in verdict.summary


# ----------------------------------------------------------------------------- data and smoke runs

def test_textures_in_unit_range_are_the_same_patches_unstandardised():
    x01, y01 = data.load_arrays("textures", "test", standardize=0)
    x, y = data.load_arrays("textures", "test")
    assert x01.min() >= 0.0 and x01.max() <= 1.0
    np.testing.assert_array_equal(y01, y)
    z = (x01 - x01.mean(axis=(1, 2), keepdims=True)) / x01.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(z, x, atol=1e-3)
    spec = data.dataset_spec("textures", standardize=0)
    assert 0.0 < spec.mean[0] < 1.0 and 0.0 < spec.std[0] < 0.5
    assert data.dataset_spec("textures").mean == (0.0,)  # the default set is unchanged


# The smoke run of each recipe (figure, report, verdict) is tests/test_contracts.py's
# test_recipe_smoke_run_writes_every_artefact, which iterates over the registry.


def test_attack_subset_is_fixed_spread_over_classes_and_part_of_the_split():
    from recipes.core.tasks import attack_subset

    x, y = data.load_arrays("textures", "test", standardize=0)
    xs, ys = attack_subset(x, y, 700)
    assert len(xs) == len(ys) == 700
    again = attack_subset(x, y, 700)
    np.testing.assert_array_equal(again[1], ys)
    np.testing.assert_array_equal(again[0], xs)
    # the split is stored by class: the first 700 would hold half the classes, the subset holds all
    counts = np.bincount(ys, minlength=int(y.max()) + 1)
    assert (counts >= 30).all(), counts
    # every chosen image is that image of the split, with its own label
    flat = {x[i].tobytes(): y[i] for i in range(len(x))}
    assert all(flat[xi.tobytes()] == yi for xi, yi in zip(xs, ys))
    assert attack_subset(x, y, None)[0] is x and attack_subset(x, y, 5000)[0] is x


def test_adversarial_smoke_run_attacks_the_subset_and_never_beats_its_clean_accuracy(tmp_path):
    import os

    from recipes.core import runfolder
    from recipes.core.engine import run_recipe

    run_dir, _ = run_recipe(adversarial_resnets.RECIPE, "smoke", runs_dir=str(tmp_path), argv=["test"])
    rows = runfolder.read_results(os.path.join(run_dir, "results.csv"))
    assert len(rows) == 4
    for row in rows:
        assert int(float(row["attack_examples"])) == 180  # the smoke budget's subset of the 360 digits
        clean = float(row["attacked_clean_accuracy"])
        for column in ("fgsm_eps1", "fgsm_eps8", "pgd_eps1", "pgd_eps8"):
            assert float(row[column]) <= clean, (column, row)
