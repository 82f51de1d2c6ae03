"""convmixer-mixing: paper scale is right by construction; the claim check says what it should."""

import keras
import numpy as np
import pytest

import zoo
from recipes.core import data
from recipes.paper_a.convmixer_mixing import RECIPE, check
from recipes.core.engine import expand_grid
from recipes.core.train import make_optimizer


def convmixer_params(w, depth, k, p, channels, classes):
    """The reference ConvMixer's learnable parameters (PyTorch counts the same)."""
    stem = p * p * channels * w + w
    block = (k * k * w + w) + (w * w + w)
    batch_norms = (1 + 2 * depth) * 2 * w
    return stem + depth * block + batch_norms + w * classes + classes


@pytest.mark.slow
@pytest.mark.parametrize("dataset,shape,classes", [("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100),
                                                   ("imagenet2012", (224, 224, 3), 1000)])
def test_paper_scale_models_have_paper_size_and_train_a_step(dataset, shape, classes):
    scale = RECIPE.scales["paper"]
    model_cfg, budget = scale.model_for(dataset), scale.budget_for(dataset)
    spec = data.dataset_spec(dataset)
    assert spec.image_shape == shape and spec.num_classes == classes
    expected = {"cifar10": (128, 8, 1), "cifar100": (128, 8, 1), "imagenet2012": (512, 8, 7)}[dataset]
    assert (model_cfg["width"], model_cfg["kernel_size"], model_cfg["patch_size"]) == expected
    depth = max(scale.grid["depth"])
    for mode in ("full", "chans"):
        model = zoo.create_model("convmixer", **model_cfg, depth=depth, mode=mode, num_classes=classes,
                                 input_shape=shape, mean=list(spec.mean), std=list(spec.std))
        counts = zoo.count_params(model)
        w, k, p = expected
        assert sum(counts.values()) == convmixer_params(w, depth, k, p, 3, classes)
        if mode == "chans":
            assert counts["spatial_trainable"] == 0 and counts["channel_trainable"] == depth * (w * w + w)
    # two real optimisation steps of the last model on arrays of the real shape
    # (the one-cycle schedule starts at lr 0, so the first step moves nothing)
    model.compile(optimizer=make_optimizer("convmixer", 10, budget["lr"], budget["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((2, *shape), dtype="float32")
    y = rng.integers(0, classes, 2)
    before = keras.ops.convert_to_numpy(model.get_layer("classifier").kernel).copy()
    losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
    assert np.all(np.isfinite(losses))
    after = keras.ops.convert_to_numpy(model.get_layer("classifier").kernel)
    assert not np.array_equal(before, after)


def test_scales_follow_the_contract():
    assert set(RECIPE.scales) == {"smoke", "cpu", "paper"}
    cpu = RECIPE.scales["cpu"]
    assert cpu.dataset == "textures" and len(cpu.seeds) >= 2
    assert {c["mode"] for c, _ in expand_grid(cpu)} == {"full", "chans", "space"}
    assert RECIPE.scales["smoke"].dataset in ("digits", "patches")


def rows(values, spread=0.002):
    """Results rows for two seeds per (depth, mode) around the given means."""
    out = []
    for (depth, mode), mean in values.items():
        for s, sign in ((0, -1), (1, 1)):
            out.append({"depth": str(depth), "mode": mode, "seed": str(s), "test_accuracy": str(mean + sign * spread)})
    return out


def test_check_holds_when_chans_close_to_full_and_far_above_space():
    v = check(rows({(2, "full"): 0.70, (2, "chans"): 0.69, (2, "space"): 0.55}))
    assert v.verdict == "holds" and "70.0" in v.table and "55.0" in v.table


def test_check_does_not_hold_when_space_matches_chans():
    v = check(rows({(2, "full"): 0.70, (2, "chans"): 0.68, (2, "space"): 0.675}))
    assert v.verdict == "does not hold"


def test_check_does_not_hold_when_chans_far_below_full():
    close = RECIPE.thresholds.at("cpu").close
    v = check(rows({(2, "full"): 0.70, (2, "chans"): 0.70 - close - 0.05, (2, "space"): 0.40}))
    assert v.verdict == "does not hold"


def test_check_inconclusive_within_spread_or_at_ceiling():
    noisy = check(rows({(2, "full"): 0.70, (2, "chans"): 0.66, (2, "space"): 0.60}, spread=0.08))
    assert noisy.verdict == "inconclusive"
    ceiling = check(rows({(2, "full"): 0.995, (2, "chans"): 0.995, (2, "space"): 0.993}, spread=0.001))
    assert ceiling.verdict == "inconclusive" and "ceiling" in ceiling.summary
    t = RECIPE.thresholds.at("cpu")
    assert t.far > t.close
