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


def spatial_arms(k5, base=0.60):
    acc = {}
    for net in ("vgg16", "resnet50"):
        acc[net, "none", 0] = base
        for method in ("shuffle", "gap_fc", "conv1x1"):
            acc[net, method, 5] = k5
            acc[net, method, 9] = k5 - 0.1
    return acc


def test_spatial_ablation_check():
    v = verdict("spatial-ablation", sa_rows(spatial_arms(0.595)))
    assert v.verdict == "holds" and "most compressed" in v.table
    assert verdict("spatial-ablation", sa_rows(spatial_arms(0.50))).verdict == "does not hold"
    rows = sa_rows(spatial_arms(0.56))
    for r in rows:  # a wide seed spread
        r["test_accuracy"] = repr(float(r["test_accuracy"]) + (0.06 if r["seed"] == "1" else -0.06))
    assert verdict("spatial-ablation", rows).verdict == "inconclusive"
    assert verdict("spatial-ablation", sa_rows({("vgg16", "none", 0): 0.6})).verdict == "inconclusive"


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


def ds_rows(avg, mx, s2):
    acc = {(("arm", "resnet50:none:0"), ("downsampling", "none"), ("k", 0)): 0.6}
    for d, v in (("avg", avg), ("max", mx), ("stride2", s2)):
        acc[(("arm", f"resnet50:conv1x1:13:{d}"), ("downsampling", d), ("k", 13))] = v
        acc[(("arm", f"resnet50:conv1x1:3:{d}"), ("downsampling", d), ("k", 3))] = 0.6
    return rows_of(acc)


def test_downsampling_check():
    assert verdict("downsampling", ds_rows(0.55, 0.54, 0.40)).verdict == "holds"
    assert verdict("downsampling", ds_rows(0.40, 0.41, 0.55)).verdict == "does not hold"
    assert verdict("downsampling", ds_rows(0.55, 0.45, 0.40)).verdict == "does not hold"  # avg ≉ max
    assert verdict("downsampling", ds_rows(0.55, 0.54, 0.545)).verdict == "inconclusive"


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
                        **{(("arm", f"{n}:{m}:5"), ("net", n), ("method", m), ("k", 5)): arm
                           for n in ("vgg16", "resnet50") for m in ("shuffle", "gap_fc", "conv1x1")}})

    assert verdict("spatial-ablation", rows(0.072, 0.071)).verdict == "inconclusive"
    assert verdict("spatial-ablation", rows(0.40, 0.395)).verdict == "holds"  # the same rows, learned
    assert claims.within((0.072, 0.001, 2), (0.071, 0.001, 2), 0.02, chance=1 / 14) == "inconclusive"
    assert claims.within((0.40, 0.01, 2), (0.395, 0.01, 2), 0.02, chance=1 / 14) == "holds"
