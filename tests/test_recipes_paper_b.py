"""Paper B recipes: their checks on hand-made rows (holds / does not hold / inconclusive), the
receptive-field helper on hand-computed VGG-16 values, repeated shuffled evaluation, and the
paper-scale models built from the recipes' own configs (parameter counts against the paper's
tables, one training step on arrays of the real shape; the big ones are marked slow).

Runs once, on the default backend (not marked `backends`).
"""

import numpy as np
import pytest

from recipes.core.receptive_field import (receptive_fields, vgg16_last_layer_rf, vgg16_layers,
                                          vgg16_receptive_fields)
from recipes.core import claims
from recipes.core.registry import get_recipe
from recipes.paper_b import _common as c

# --------------------------------------------------------------------------- hand-made rows


def rows_of(arms, metric="test_accuracy", spread=0.005, seeds=(0, 1), **common):
    """Rows of results.csv (strings) for {tuple of (column, value) pairs: mean}: one per seed,
    mean ± spread (seed 0 below, seed 1 above)."""
    out = []
    for key, mean in arms.items():
        for i, seed in enumerate(seeds):
            value = mean + (spread if i % 2 else -spread)
            out.append({**{k: str(v) for k, v in key}, "seed": str(seed), "dataset": "textures",
                        metric: repr(value), **{k: str(v) for k, v in common.items()}})
    return out


def verdict(rid, rows):
    return get_recipe(rid).check(rows)


# --------------------------------------------------------------------------- receptive field


def test_receptive_field_recurrence_on_hand_computed_vgg16():
    rf = vgg16_receptive_fields(0)
    expected = {"conv1_1": 3, "conv1_2": 5, "pool1": 6, "conv2_1": 10, "conv2_2": 14, "pool2": 16,
                "conv3_1": 24, "conv3_2": 32, "conv3_3": 40, "pool3": 44, "conv4_1": 60, "conv4_2": 76,
                "conv4_3": 92, "pool4": 100, "conv5_1": 132, "conv5_2": 164, "conv5_3": 196, "pool5": 212}
    assert rf == expected
    jumps = {name: j for name, _, j in receptive_fields(vgg16_layers(0))}
    assert jumps["conv1_2"] == 1 and jumps["pool1"] == 2 and jumps["conv4_3"] == 8 and jumps["pool5"] == 32


def test_receptive_field_generic_recurrence():
    # r_out = r_in + (k-1)·j_in, j_out = j_in·s: 7×7/2, 3×3/2 pool, 3×3/1
    assert receptive_fields([("a", 7, 2), ("b", 3, 2), ("c", 3, 1)]) == [("a", 7, 2), ("b", 11, 4), ("c", 19, 4)]


def test_receptive_field_with_1x1_layers_gives_the_papers_axis():
    # Fig. 3 right: 212 164 132 100 76 60 44 32 24 16 10 for K = 0..10
    assert [vgg16_last_layer_rf(k) for k in range(11)] == [212, 164, 132, 100, 76, 60, 44, 32, 24, 16, 10]
    assert vgg16_last_layer_rf(13) == 1
    assert vgg16_receptive_fields(13)["pool5"] == 32  # the pools alone: 1 + 1 + 2 + 4 + 8 + 16
    assert vgg16_receptive_fields(1)["conv5_3"] == 164 and vgg16_receptive_fields(1)["pool5"] == 180
    assert vgg16_receptive_fields(2)["conv5_3"] == 132 and vgg16_receptive_fields(2)["pool5"] == 148
    with pytest.raises(ValueError):
        vgg16_layers(14)


# --------------------------------------------------------------------------- shuffled evaluation


@pytest.fixture(scope="module")
def shuffled_vgg():
    import keras

    import zoo

    keras.utils.set_random_seed(0)  # the same nets every run, whatever ran before

    config = {"width_multiplier": 1 / 16, "fc_width": 256, "num_classes": 5, "input_shape": (32, 32, 1),
              "dropout": 0.0}
    clean = zoo.create_model("vgg16", **config)
    shuffled = zoo.create_model("vgg16", **config, spatial_method="shuffle", k=3)
    c.transfer_weights(clean, shuffled)
    x = np.random.default_rng(0).normal(size=(96, 32, 32, 1)).astype("float32")
    return clean, shuffled, x, config


def test_repeated_evaluation_draws_fresh_permutations_and_repeats_with_the_seed(shuffled_vgg):
    from zoo.spatial_info import reseed_shuffles

    clean, shuffled, x, _ = shuffled_vgg
    reseed_shuffles(shuffled, 7)
    first, second = shuffled.predict_on_batch(x), shuffled.predict_on_batch(x)
    assert not np.allclose(first, second), "two forward passes drew the same permutations"
    reseed_shuffles(shuffled, 7)
    np.testing.assert_allclose(shuffled.predict_on_batch(x), first, rtol=1e-5, atol=1e-6)
    # an untrained net's argmax hardly moves, so the passes are told apart by their logits:
    # every pass of accuracy_passes is one predict_on_batch per batch, as above
    y = np.arange(len(x)) % 5
    accs = c.accuracy_passes(shuffled, x, y, passes=5, seed=3, batch_size=32)
    assert len(accs) == 5 and all(0.0 <= a <= 1.0 for a in accs)
    assert c.accuracy_passes(shuffled, x, y, passes=5, seed=3, batch_size=32) == accs
    reseed_shuffles(shuffled, 3)
    passes = [np.asarray(shuffled.predict_on_batch(x[:32])) for _ in range(3)]
    assert not np.allclose(passes[0], passes[1]) and not np.allclose(passes[1], passes[2])
    y_clean = np.asarray(clean.predict_on_batch(x)).argmax(-1)
    assert c.accuracy_passes(clean, x, y_clean, passes=2, seed=3) == [1.0, 1.0]  # no shuffle: deterministic


def test_transfer_weights_moves_every_weighted_layer(shuffled_vgg):
    import zoo

    clean, shuffled, x, config = shuffled_vgg
    other = zoo.create_model("vgg16", **config, seed=1)
    copied = c.transfer_weights(shuffled, other)
    assert copied == sum(1 for layer in other.layers if layer.weights)
    np.testing.assert_allclose(other.predict_on_batch(x), clean.predict_on_batch(x), rtol=1e-5, atol=1e-5)
    gap = zoo.create_model("vgg16", **config, spatial_method="gap_fc", k=2)
    with pytest.raises(ValueError, match="no counterpart"):
        c.transfer_weights(clean, gap)


# --------------------------------------------------------------------------- checks, one recipe each


def shuffle_test_time_rows(cc, cs, ss, sc, spread=0.005):
    out = []
    for i, seed in enumerate((0, 1)):
        d = spread if i else -spread
        out.append({"train_k": "0", "seed": str(seed), "dataset": "textures", "passes": "10",
                    "test_clean": repr(cc + d), "test_shuffle_k3": repr(cs + d)})
        out.append({"train_k": "3", "seed": str(seed), "dataset": "textures", "passes": "10",
                    "test_clean": repr(sc + d), "test_shuffle_k3": repr(ss + d)})
    return out


def test_shuffle_test_time_check():
    assert verdict("shuffle-test-time", shuffle_test_time_rows(0.60, 0.08, 0.59, 0.595)).verdict == "holds"
    # no collapse under test-time shuffling
    assert verdict("shuffle-test-time", shuffle_test_time_rows(0.60, 0.58, 0.59, 0.595)).verdict == "does not hold"
    # the shuffle-trained net loses accuracy when tested clean
    assert verdict("shuffle-test-time", shuffle_test_time_rows(0.60, 0.08, 0.59, 0.40)).verdict == "does not hold"
    assert verdict("shuffle-test-time", shuffle_test_time_rows(0.60, 0.08, 0.55, 0.55, spread=0.05)).verdict \
        == "inconclusive"
    clean_only = [r for r in shuffle_test_time_rows(0.60, 0.08, 0.59, 0.595) if r["train_k"] == "0"]
    assert verdict("shuffle-test-time", clean_only).verdict == "inconclusive"


def sa_rows(acc):
    return rows_of({(("arm", f"{n}:{m}:{k}"), ("net", n), ("method", m), ("k", k)): v for (n, m, k), v in acc.items()},
                   params_trainable=1000, params_frozen=0)


def spatial_arms(at_claim, base=0.60):
    """Every method at K = 5 and 9; the arm at the claim's K (ResNet-50's 1x1Conv: 9, the rest
    5, CIFAR-100's) at `at_claim`, the other K 10 points lower."""
    acc = {}
    for net in ("vgg16", "resnet50"):
        acc[net, "none", 0] = base
        for method in ("shuffle", "gap_fc", "conv1x1"):
            claim_k = 9 if (net, method) == ("resnet50", "conv1x1") else 5
            for k in (5, 9):
                acc[net, method, k] = at_claim if k == claim_k else at_claim - 0.1
    return acc


def test_spatial_ablation_check():
    v = verdict("spatial-ablation", sa_rows(spatial_arms(0.595)))
    assert v.verdict == "holds" and "most compressed" in v.table and "resnet50 1x1Conv K=9" in v.summary
    assert verdict("spatial-ablation", sa_rows(spatial_arms(0.50))).verdict == "does not hold"
    rows = sa_rows(spatial_arms(0.56))
    for r in rows:  # a wide seed spread
        r["test_accuracy"] = repr(float(r["test_accuracy"]) + (0.06 if r["seed"] == "1" else -0.06))
    assert verdict("spatial-ablation", rows).verdict == "inconclusive"
    assert verdict("spatial-ablation", sa_rows({("vgg16", "none", 0): 0.6})).verdict == "inconclusive"


def test_spatial_ablation_reads_the_papers_k_per_dataset_and_method():
    from recipes.paper_b.spatial_ablation import THRESHOLDS, claim_ks

    assert claim_ks("cifar100") == {"vgg16": {"shuffle": 5, "gap_fc": 5, "conv1x1": 5},
                                    "resnet50": {"shuffle": 5, "gap_fc": 5, "conv1x1": 9}}      # Table 1
    assert claim_ks("imagenet_resized/32x32") == {"vgg16": {"gap_fc": 4, "conv1x1": 7},
                                                  "resnet50": {"gap_fc": 3, "conv1x1": 6}}     # Table 3
    assert claim_ks("textures") == claim_ks("cifar100")
    # CIFAR-100's K's on textures: ResNet-50's 1x1Conv is read at K = 9, not 5
    k9_fails = spatial_arms(0.595)
    k9_fails["resnet50", "conv1x1", 9] = 0.50
    v = verdict("spatial-ablation", sa_rows(k9_fails))
    assert v.verdict == "does not hold" and "resnet50 1x1Conv K=9: does not hold" in v.summary

    def small_imagenet(acc):
        return [{**r, "dataset": "imagenet_resized/32x32"} for r in sa_rows(acc)]

    table3 = {("vgg16", "none", 0): 0.46, ("vgg16", "gap_fc", 4): 0.455, ("vgg16", "conv1x1", 7): 0.452,
              ("resnet50", "none", 0): 0.62, ("resnet50", "gap_fc", 3): 0.612, ("resnet50", "conv1x1", 6): 0.61,
              ("vgg16", "shuffle", 5): 0.30, ("resnet50", "shuffle", 5): 0.30}   # Shuffle: not run there, not judged
    v = verdict("spatial-ablation", small_imagenet(table3))
    assert v.verdict == "holds" and "Shuffle" not in v.summary.split(". Paper")[0] and "Table 3" in v.summary
    assert verdict("spatial-ablation", small_imagenet({**table3, ("resnet50", "gap_fc", 3): 0.55})).verdict \
        == "does not hold"
    missing = {k: v for k, v in table3.items() if k != ("vgg16", "conv1x1", 7)}
    assert verdict("spatial-ablation", small_imagenet(missing)).verdict == "inconclusive"
    # the paper's 1 point at paper scale, 2 at cpu scale: a 1.5-point loss
    one_and_a_half = sa_rows(spatial_arms(0.585))
    check = get_recipe("spatial-ablation").check
    assert check(one_and_a_half, THRESHOLDS.at("cpu")).verdict == "holds"
    assert check(one_and_a_half, THRESHOLDS.at("paper")).verdict == "does not hold"
    assert (THRESHOLDS.at("paper").tol, THRESHOLDS.at("cpu").tol) == (0.01, 0.02)


def aug_rows(noaug):
    acc = {("none", 1): 0.60, ("gap_fc", 1): 0.60, ("conv1x1", 1): 0.60,
           ("none", 0): 0.50, ("gap_fc", 0): noaug, ("conv1x1", 0): noaug}
    return rows_of({(("arm", f"resnet50:{m}:{5 if m != 'none' else 0}"), ("augment", a), ("method", m),
                     ("k", 5 if m != "none" else 0)): v for (m, a), v in acc.items()})


def test_augmentation_ablation_check():
    assert verdict("augmentation-ablation", aug_rows(0.56)).verdict == "holds"
    assert verdict("augmentation-ablation", aug_rows(0.45)).verdict == "does not hold"
    rows = aug_rows(0.51)
    for r in rows:
        r["test_accuracy"] = repr(float(r["test_accuracy"]) + (0.05 if r["seed"] == "1" else -0.05))
    assert verdict("augmentation-ablation", rows).verdict == "inconclusive"


def imagenet_rows(k_acc):
    acc = {}
    from recipes.paper_b.imagenet_1x1 import NETS, TABLE4_K

    for net in NETS:
        acc[(("arm", f"{net}:none:0"), ("net", net), ("k", 0))] = 0.6
        acc[(("arm", f"{net}:conv1x1:{TABLE4_K[net]}"), ("net", net), ("k", TABLE4_K[net]))] = k_acc
    return rows_of(acc, params_trainable=10, params_frozen=0)


def test_imagenet_1x1_check():
    assert verdict("imagenet-1x1", imagenet_rows(0.61)).verdict == "holds"
    assert verdict("imagenet-1x1", imagenet_rows(0.45)).verdict == "does not hold"
    rows = imagenet_rows(0.56)
    for r in rows:
        r["test_accuracy"] = repr(float(r["test_accuracy"]) + (0.05 if r["seed"] == "1" else -0.05))
    assert verdict("imagenet-1x1", rows).verdict == "inconclusive"
    assert verdict("imagenet-1x1", imagenet_rows(0.61)[:4]).verdict == "inconclusive"  # one family only


def test_imagenet_1x1_cpu_scale_judges_the_four_families_of_its_grid():
    """SqueezeNet is not in the cpu grid: a cpu run with the other four families is complete,
    while a run without scale (or at paper scale) still needs all five."""
    from recipes.paper_b.imagenet_1x1 import NETS_AT

    grid_nets = {a.split(":")[0] for a in get_recipe("imagenet-1x1").scales["cpu"].grid["arm"]}
    assert grid_nets == set(NETS_AT["cpu"]) and "squeezenet" not in grid_nets
    four = [r for r in imagenet_rows(0.61) if r["net"] != "squeezenet"]
    assert verdict("imagenet-1x1", four).verdict == "inconclusive"                 # five expected
    assert verdict("imagenet-1x1", [{**r, "scale": "cpu"} for r in four]).verdict == "holds"
    assert verdict("imagenet-1x1", [{**r, "scale": "paper"} for r in four]).verdict == "inconclusive"


def test_imagenet_1x1_paper_scale_gives_each_family_its_own_recipe():
    """Each family trains with the recipe that reproduces its original result; ResNet-152's
    sweep has every K up to 46 (the paper's best is K = 19)."""
    from types import SimpleNamespace

    from recipes.paper_b.imagenet_1x1 import SCALES

    paper = SCALES["paper"]
    arms = set(paper.grid["arm"])
    assert {f"resnet152:conv1x1:{k}" for k in range(1, 47)} <= arms and "resnet152:conv1x1:19" in arms
    cell = SimpleNamespace(budget=paper.budget_for("imagenet2012"))
    by = {net: c.for_net(cell, net).budget for net in ("resnet152", "resnet50", "vgg16", "mobilenet_v2", "squeezenet")}
    assert all("by_net" not in b and b["augment"] for b in by.values())
    he = (90, 256, 0.1, 1e-4, "resnet")
    for net in ("resnet152", "resnet50"):
        assert (by[net]["epochs"], by[net]["batch_size"], by[net]["lr"], by[net]["weight_decay"], by[net]["family"]) \
            == he and tuple(by[net]["milestones"]) == (1 / 3, 2 / 3)
    assert by["vgg16"]["lr"] == 0.01 and by["vgg16"]["epochs"] == 90
    assert (by["mobilenet_v2"]["epochs"], by["mobilenet_v2"]["lr"], by["mobilenet_v2"]["weight_decay"],
            by["mobilenet_v2"]["family"]) == (300, 0.045, 4e-5, "mobilenet_v2")
    assert (by["squeezenet"]["epochs"], by["squeezenet"]["batch_size"], by["squeezenet"]["lr"],
            by["squeezenet"]["weight_decay"], by["squeezenet"]["family"]) == (68, 1024, 0.08, 2e-4, "squeezenet")
    plain = SimpleNamespace(budget={"lr": 0.05})          # no by_net: the cell as it is
    assert c.for_net(plain, "vgg16") is plain


def test_a_by_net_budget_trains_with_that_familys_optimizer(tmp_path):
    """A real (tiny) training through paper B's `train`: the squeezenet entry of `by_net`
    reaches the optimizer (its lr, its polynomial schedule, its coupled weight decay) that
    the epoch checkpoint holds; the CIFAR recipes' `family` key does the same."""
    from types import SimpleNamespace

    import keras

    from recipes.core.train import CoupledSGD, WarmupStepDecay, last_checkpoint

    for family, net, budget in (
            ("squeezenet", "squeezenet",
             {**c.SMOKE_BUDGET, "by_net": {"squeezenet": {"lr": 0.08, "weight_decay": 2e-4, "family": "squeezenet"}}}),
            ("cifar100", "vgg16", {**c.SMOKE_BUDGET, "family": "cifar100"})):
        cell_dir = tmp_path / family
        cell_dir.mkdir()
        cell = SimpleNamespace(budget=budget, dataset="textures", data_dir=None, seed=0, dir=str(cell_dir),
                               model_path=str(cell_dir / "model.keras"), report_epoch=lambda *a, **k: None)
        c.train(cell, net, {"width_multiplier": 1 / 16})
        path, done = last_checkpoint(str(cell_dir))
        opt = keras.models.load_model(path).optimizer
        assert done == 1 and isinstance(opt, CoupledSGD)
        if family == "squeezenet":
            assert opt.l2 == pytest.approx(2e-4)
            schedule = opt._learning_rate
            assert isinstance(schedule, keras.optimizers.schedules.PolynomialDecay) and schedule.power == 0.5
            assert schedule.initial_learning_rate == pytest.approx(0.08)
        else:
            assert isinstance(opt._learning_rate, WarmupStepDecay) and opt._learning_rate.factor == 0.2


def strip_rows(by_strip, spread=0.005):
    return rows_of({(("strip", s),): v for s, v in by_strip.items()}, spread=spread, params_trainable=10,
                   params_frozen=0)


def test_depth_strip_check():
    assert verdict("depth-strip", strip_rows({0: 0.60, 3: 0.57, 6: 0.52})).verdict == "holds"
    assert verdict("depth-strip", strip_rows({0: 0.50, 3: 0.57, 6: 0.60})).verdict == "does not hold"
    assert verdict("depth-strip", strip_rows({0: 0.60, 6: 0.59}, spread=0.05)).verdict == "inconclusive"
    assert verdict("depth-strip", strip_rows({0: 0.60})).verdict == "inconclusive"


def rf_rows(acc, spread=0.005):
    return rows_of({(("image_size", s), ("k", k)): v for (s, k), v in acc.items()}, spread=spread)


def test_receptive_field_check():
    # RF for K = 0, 2, 5, 8: 212, 132, 60, 24
    good = {(32, 0): 0.6, (32, 2): 0.6, (32, 5): 0.595, (32, 8): 0.50,
            (64, 0): 0.6, (64, 2): 0.595, (64, 5): 0.57, (64, 8): 0.45}
    assert verdict("receptive-field", rf_rows(good)).verdict == "holds"
    flat = {key: 0.6 for key in good}  # no knee: accuracy does not depend on the receptive field
    assert verdict("receptive-field", rf_rows(flat)).verdict == "does not hold"
    no_saturation = {**good, (32, 2): 0.50, (32, 5): 0.50}
    assert verdict("receptive-field", rf_rows(no_saturation)).verdict == "does not hold"
    assert verdict("receptive-field", rf_rows({**good, (32, 8): 0.57, (64, 8): 0.57}, spread=0.04)).verdict \
        == "inconclusive"


def test_receptive_field_saturates_where_the_paper_says():
    """Saturation from RF 50 at 32 px and RF 120 at 64 px (§4.4); at 96 px the paper gives no
    number, so only the knee is read. RF for K = 1..4: 164, 132, 100, 76."""
    from recipes.paper_b.receptive_field import SATURATION_RF

    assert SATURATION_RF == {32: 50, 64: 120}
    # 64 px, K = 3 (RF 100) below the baseline: under 120, not a saturation point
    below_120 = {(64, 0): 0.6, (64, 2): 0.595, (64, 3): 0.55, (64, 8): 0.45}
    assert verdict("receptive-field", rf_rows(below_120)).verdict == "holds"
    # 32 px, K = 5 (RF 60 ≥ 50) far below: does not saturate where the paper says it does
    assert verdict("receptive-field", rf_rows({(32, 0): 0.6, (32, 5): 0.50, (32, 8): 0.45})).verdict == "does not hold"
    # 96 px: K = 1 (RF 164) far below the baseline is not judged; the knee is
    knee_96 = {(96, 0): 0.6, (96, 1): 0.50, (96, 8): 0.40}
    v = verdict("receptive-field", rf_rows(knee_96))
    assert v.verdict == "holds" and "96×96: no saturation point in the paper" in v.summary
    assert verdict("receptive-field", rf_rows({**knee_96, (96, 8): 0.595})).verdict == "does not hold"
    assert verdict("receptive-field", rf_rows({**knee_96, (96, 8): 0.58}, spread=0.03)).verdict == "inconclusive"


def ds_rows(curves, spread=0.005):
    """{method: {K: accuracy}} with the baseline at 60 %."""
    acc = {(("arm", "resnet50:none:0"), ("downsampling", "none"), ("k", 0)): 0.6}
    for d, by_k in curves.items():
        for k, v in by_k.items():
            acc[(("arm", f"resnet50:conv1x1:{k}:{d}"), ("downsampling", d), ("k", k))] = v
    return rows_of(acc, spread=spread)


# Fig. 4's shape: the baseline kept to K = 6 with pooling, to K = 3 with stride 2
POOL = {3: 0.598, 6: 0.595, 9: 0.55, 13: 0.50}
STRIDE = {3: 0.597, 6: 0.55, 9: 0.45, 13: 0.40}


def test_downsampling_check():
    v = verdict("downsampling", ds_rows({"avg": POOL, "max": {**POOL, 13: 0.49}, "stride2": STRIDE}))
    assert v.verdict == "holds" and "avg 6, max 6, stride 2 3" in v.summary and "modifiable" in v.table
    same_count = verdict("downsampling", ds_rows({"avg": POOL, "max": POOL, "stride2": {**POOL, 13: 0.30}}))
    assert same_count.verdict == "does not hold"   # stride 2 keeps as many layers: pooling does not let more
    assert verdict("downsampling", ds_rows({"avg": POOL, "max": {**POOL, 13: 0.40}, "stride2": STRIDE})).verdict \
        == "does not hold"  # avg ≉ max
    noisy = verdict("downsampling", ds_rows({"avg": POOL, "max": POOL, "stride2": STRIDE}, spread=0.04))
    assert noisy.verdict == "inconclusive"
    at_chance = ds_rows({"avg": POOL, "max": POOL, "stride2": STRIDE})
    for r in at_chance:
        r["test_accuracy"] = repr(float(r["test_accuracy"]) - 0.52)   # a baseline at 8 %: chance is 7.1 %
    assert verdict("downsampling", at_chance).verdict == "inconclusive"
    assert verdict("downsampling", ds_rows({"avg": POOL})).verdict == "inconclusive"


def test_modifiable_layers_bracket():
    base = (0.60, 0.005, 2)
    arms = {3: (0.598, 0.005, 2), 6: (0.595, 0.005, 2), 9: (0.50, 0.005, 2)}
    assert c.modifiable(base, arms, 0.01) == (6, 6)
    noisy = {**arms, 9: (0.58, 0.04, 2)}      # a 2-point drop within a 4-point spread: inconclusive at 9
    assert c.modifiable(base, noisy, 0.01) == (6, 9)
    assert c.modifiable(base, {3: (0.40, 0.005, 2)}, 0.01) == (0, 0)
    assert c.more_modifiable((6, 6), (3, 3)) == "holds"
    assert c.more_modifiable((3, 6), (3, 3)) == "inconclusive"
    assert c.more_modifiable((3, 3), (3, 6)) == "does not hold"


def sl_rows(acc, spread=0.005):
    return rows_of({(("layer", layer),): v for layer, v in acc.items()}, spread=spread)


def test_single_layer_shuffle_check():
    assert verdict("single-layer-shuffle", sl_rows({0: 0.6, 1: 0.2, 7: 0.5, 13: 0.6})).verdict == "holds"
    assert verdict("single-layer-shuffle", sl_rows({0: 0.6, 1: 0.6, 13: 0.6})).verdict == "does not hold"
    assert verdict("single-layer-shuffle", sl_rows({0: 0.6, 1: 0.2, 13: 0.4})).verdict == "does not hold"
    assert verdict("single-layer-shuffle", sl_rows({0: 0.6, 1: 0.55, 13: 0.58}, spread=0.05)).verdict \
        == "inconclusive"
    assert verdict("single-layer-shuffle", sl_rows({0: 0.6, 13: 0.6})).verdict == "inconclusive"


def cs_rows(spatial, channel, spread=0.005):
    acc = {(("arm", "vgg16:none:0"), ("method", "none"), ("k", 0)): 0.6}
    for k in (1, 3):
        acc[(("arm", f"vgg16:shuffle:{k}"), ("method", "shuffle"), ("k", k))] = spatial
        acc[(("arm", f"vgg16:channel_shuffle:{k}"), ("method", "channel_shuffle"), ("k", k))] = channel
    return rows_of(acc, spread=spread)


def test_channel_shuffle_check():
    assert verdict("channel-shuffle", cs_rows(0.6, 0.45)).verdict == "holds"
    assert verdict("channel-shuffle", cs_rows(0.5, 0.6)).verdict == "does not hold"
    assert verdict("channel-shuffle", cs_rows(0.6, 0.595)).verdict == "does not hold"  # not by far
    assert verdict("channel-shuffle", cs_rows(0.6, 0.56, spread=0.05)).verdict == "inconclusive"


def test_channel_shuffle_has_a_chance_floor():
    """Where spatial shuffling is itself within the margin of chance (14 classes: 7.1 %),
    channel shuffling cannot fall further: that K is not judged."""
    rows = cs_rows(0.6, 0.45)
    for r in rows:
        if r["k"] == "3":   # both shuffles at chance at K = 3
            r["test_accuracy"] = repr(0.075 + (0.002 if r["seed"] == "1" else -0.002))
    v = verdict("channel-shuffle", rows)
    assert v.verdict == "holds" and "K=3: spatial shuffle within 2 pts of chance" in v.summary
    floored = [{**r, "test_accuracy": "0.08"} if r["method"] != "none" else r for r in cs_rows(0.6, 0.45)]
    assert verdict("channel-shuffle", floored).verdict == "inconclusive"
    above_floor = cs_rows(0.6, 0.45)
    for r in above_floor:
        if r["k"] == "3":   # spatial well above chance, channel at chance: judged, and it holds
            r["test_accuracy"] = repr(0.30 if r["method"] == "shuffle" else 0.075)
    assert "K=3: spatial − channel" in verdict("channel-shuffle", above_floor).summary


# --------------------------------------------------------------------------- paper-scale models


def _paper_model(net, dataset="cifar100", **options):
    import zoo
    from recipes.core import data

    spec = data.dataset_spec(dataset)
    return zoo.create_model(net, **{**options, "num_classes": spec.num_classes, "input_shape": spec.image_shape,
                                    "mean": list(spec.mean), "std": list(spec.std)})


def _millions(model):
    """Learnable parameters in millions (BN moving statistics are not parameters; PyTorch's
    `parameters()`, which the paper's counts follow, leaves them out too)."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights) / 1e6


def _one_step(model, shape, classes, batch=2):
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(batch, *shape)).astype("float32")
    loss = model.train_on_batch(x, np.arange(batch) % classes)
    assert np.isfinite(loss)


@pytest.mark.slow
def test_paper_scale_vgg16_and_resnet50_match_table_1():
    from recipes.paper_b.spatial_ablation import SCALES

    vgg, resnet = SCALES["paper"].model["vgg16"], SCALES["paper"].model["resnet50"]
    # Table 1 (CIFAR-100): VGG-16 34.02 M; GAP+FC / 1x1Conv K=5 23.53 M, K=2 29.82 M
    assert _millions(_paper_model("vgg16", **vgg)) == pytest.approx(34.02, abs=0.011)
    assert _millions(_paper_model("vgg16", **vgg, spatial_method="conv1x1", k=5)) == pytest.approx(23.53, abs=0.011)
    assert _millions(_paper_model("vgg16", **vgg, spatial_method="gap_fc", k=2)) == pytest.approx(29.82, abs=0.011)
    # ResNet-50 23.71 M; 1x1Conv K=9 14.26 M, K=2 19.51 M; GAP+FC K=5 16.37 M
    base = _paper_model("resnet50", **resnet)
    assert _millions(base) == pytest.approx(23.71, abs=0.011)
    assert _millions(_paper_model("resnet50", **resnet, spatial_method="conv1x1", k=9)) == pytest.approx(14.26, abs=0.011)
    assert _millions(_paper_model("resnet50", **resnet, spatial_method="conv1x1", k=2)) == pytest.approx(19.51, abs=0.011)
    assert _millions(_paper_model("resnet50", **resnet, spatial_method="gap_fc", k=5)) == pytest.approx(16.37, abs=0.011)
    _one_step(base, (32, 32, 3), 100)


@pytest.mark.slow
def test_paper_scale_shuffle_and_channel_shuffle_vgg16_train_a_step():
    from recipes.paper_b.channel_shuffle import SCALES

    vgg = SCALES["paper"].model["vgg16"]
    for method in ("shuffle", "channel_shuffle"):
        model = _paper_model("vgg16", **vgg, spatial_method=method, k=3)
        assert _millions(model) == pytest.approx(34.02, abs=0.011)
        _one_step(model, (32, 32, 3), 100)


@pytest.mark.slow
def test_paper_scale_depth_strip_models():
    from recipes.paper_b.depth_strip import SCALES, stripped_resnet50
    from recipes.core import data

    spec = data.dataset_spec("imagenet_resized/32x32")
    config = {**SCALES["paper"].model["resnet50"], "num_classes": 1000, "input_shape": spec.image_shape,
              "mean": list(spec.mean), "std": list(spec.std)}
    full = stripped_resnet50(0, **config)
    three = stripped_resnet50(3, **config)
    six = stripped_resnet50(6, **config)
    assert full.count_params() > three.count_params() > six.count_params()
    assert three.output_shape == (None, 1000) and six.output_shape == (None, 1000)
    # strip 3 removes the whole last stage: the head sees stage 3's 1024 channels
    assert three.get_layer("classifier").kernel.shape == (1024, 1000)
    # the 6 modified bottlenecks are 1x1Conv: no 3×3 conv after stage3_block3
    convs = [layer for layer in full.layers if layer.name.endswith("_conv2") and "stage4" in layer.name]
    assert convs and all(layer.kernel.shape[0] == 1 for layer in convs)
    _one_step(six, (32, 32, 3), 1000)


@pytest.mark.slow
def test_paper_scale_receptive_field_models_upsample_inside():
    from recipes.core import data
    from recipes.paper_b.receptive_field import SCALES, resized_vgg16

    spec = data.dataset_spec("cifar100")
    config = {**SCALES["paper"].model["vgg16"], "num_classes": 100, "input_shape": spec.image_shape,
              "mean": list(spec.mean), "std": list(spec.std), "spatial_method": "conv1x1", "k": 5}
    for size in (32, 64, 96):
        model = resized_vgg16(size, config)
        assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 100)
        assert _millions(model) == pytest.approx(23.53, abs=0.011)  # the size changes the maps, not the weights
    _one_step(model, (32, 32, 3), 100)


@pytest.mark.slow
def test_paper_scale_imagenet_families_match_table_4():
    from recipes.paper_b.imagenet_1x1 import SCALES

    models = SCALES["paper"].model
    # Table 4 (ImageNet): baseline → 1x1Conv at the best K, in millions
    # SqueezeNet: Table 4 says 1.23 M at K=2, but its text (§4.3: every 3×3 expand conv of the
    # modified fires becomes 1×1) gives 1.25 − 2 · 64·256·(9 − 1) / 1e6 = 0.99 M for fire8 and fire9;
    # the zoo follows the text, and this test checks the text's count.
    expected = {"resnet50": (25.55, 5, 18.22), "vgg16": (37.70, 1, 35.60), "mobilenet_v2": (3.50, 2, 3.48),
                "squeezenet": (1.25, 2, 0.99)}
    for net, (base, k, modified) in expected.items():
        assert _millions(_paper_model(net, "imagenet2012", **models[net])) == pytest.approx(base, abs=0.011), net
        assert _millions(_paper_model(net, "imagenet2012", **models[net], spatial_method="conv1x1", k=k)) \
            == pytest.approx(modified, abs=0.011), net


def test_recipes_cpu_scales_use_textures_at_32():
    for rid in ("shuffle-test-time", "spatial-ablation", "augmentation-ablation", "imagenet-1x1", "depth-strip",
                "receptive-field", "downsampling", "single-layer-shuffle", "channel-shuffle"):
        recipe = get_recipe(rid)
        cpu = recipe.scales["cpu"]
        assert cpu.dataset == "textures" and cpu.budget["dataset_options"]["patch_size"] == 32, rid
        assert len(cpu.seeds) >= 2, rid
        assert recipe.scales["paper"].budget["epochs"] in (200, 90), rid


# The cpu epochs follow the budget rule: tests/test_budget.py (every recipe, paper A and B).


def test_a_baseline_at_chance_has_nothing_to_lose():
    # 14 classes: chance 7.1 %; arms at chance are not "within 1 point" of a baseline at chance
    def rows(base, arm):
        return rows_of({**{(("arm", f"{n}:none:0"), ("net", n), ("method", "none"), ("k", 0)): base
                           for n in ("vgg16", "resnet50")},
                        **{(("arm", f"{n}:{m}:{k}"), ("net", n), ("method", m), ("k", k)): arm
                           for n in ("vgg16", "resnet50") for m in ("shuffle", "gap_fc", "conv1x1") for k in (5, 9)}})

    assert verdict("spatial-ablation", rows(0.072, 0.071)).verdict == "inconclusive"
    assert verdict("spatial-ablation", rows(0.40, 0.395)).verdict == "holds"  # the same rows, learned
    assert claims.within((0.072, 0.001, 2), (0.071, 0.001, 2), 0.02, chance=1 / 14) == "inconclusive"
    assert claims.within((0.40, 0.01, 2), (0.395, 0.01, 2), 0.02, chance=1 / 14) == "holds"
