"""Frozen means never updated; filter kinds are what they say. Runs on every backend."""

import keras
import numpy as np
import pytest

import zoo
from tests.helpers import to_numpy

pytestmark = pytest.mark.backends


def snapshot(model):
    """{(layer, weight path): array} for every learnable weight (BN statistics excluded)."""
    return {(layer.name, w.path): to_numpy(w).copy()
            for layer in model.layers for w in layer.weights
            if not w.path.endswith(("moving_mean", "moving_variance"))}


@pytest.mark.parametrize("name", ["convmixer", "sep_resnet_cifar"])
@pytest.mark.parametrize("mode", zoo.MODES)
def test_training_changes_trainable_and_never_frozen(name, mode):
    keras.utils.set_random_seed(1)
    config = dict(width=8, depth=1, kernel_size=3, num_classes=4, input_shape=(8, 8, 3), mode=mode)
    if name == "convmixer":
        config["patch_size"] = 1
    model = zoo.create_model(name, **config)
    trainable_layers = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    before = snapshot(model)
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 3), dtype="float32")
    y = rng.integers(0, 4, 32)
    model.compile(optimizer=keras.optimizers.AdamW(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = snapshot(model)
    frozen = [key for key in before if key[0] not in trainable_layers]
    learned = [key for key in before if key[0] in trainable_layers]
    assert learned, "no trainable weights"
    if mode != "full":
        assert frozen, f"{mode} froze nothing"
    for key in frozen:
        assert np.array_equal(before[key], after[key]), f"frozen weight {key} changed in {mode}"
    for key in learned:
        assert not np.array_equal(before[key], after[key]), f"trainable weight {key} did not change in {mode}"


def test_model_uses_requested_filters():
    model = zoo.create_model("convmixer", width=6, depth=2, kernel_size=5, patch_size=1, num_classes=3,
                             input_shape=(8, 8, 3), filters="box")
    for layer in zoo.spatial_layers(model):
        np.testing.assert_allclose(to_numpy(layer.kernel), 1 / 25, rtol=1e-6)


def test_random_filters_reproducible_by_seed_and_at_torch_scale():
    def kernels(seed):
        model = zoo.create_model("convmixer", width=64, depth=2, kernel_size=5, patch_size=1,
                                 num_classes=3, input_shape=(8, 8, 3), seed=seed)
        return [to_numpy(layer.kernel) for layer in zoo.spatial_layers(model)]

    a, b, c = kernels(3), kernels(3), kernels(4)
    for ka, kb, kc in zip(a, b, c):
        np.testing.assert_array_equal(ka, kb)
        assert not np.allclose(ka, kc)
    assert not np.allclose(a[0], a[1]), "layers must get independent filters"
    k = 5
    w = np.concatenate([x.ravel() for x in a])
    assert np.abs(w).max() <= 1 / k
    # U(-1/k, 1/k) has std 1/(k·√3) = 0.1155 for k=5; Keras's glorot default would be ~6× smaller
    assert w.std() == pytest.approx(1 / (k * np.sqrt(3)), rel=0.05)


def test_same_filters_identical_across_channels():
    w = zoo.spatial_filters("same", 3, channels=7, depth_multiplier=9, seed=0)
    assert w.shape == (3, 3, 7, 9)
    for c in range(1, 7):
        np.testing.assert_array_equal(w[:, :, c, :], w[:, :, 0, :])
    assert not np.allclose(w[..., 0, 0], w[..., 0, 1]), "the d kernels differ from each other"


@pytest.mark.parametrize("k", [3, 4, 5, 8])
def test_identity_filter_is_identity_and_box_is_mean(k):
    x = np.random.default_rng(0).random((1, 12, 12, 2), dtype="float32")
    layer = keras.layers.DepthwiseConv2D(k, padding="same", use_bias=False)
    layer.build(x.shape)
    layer.kernel.assign(zoo.spatial_filters("identity", k, channels=2))
    np.testing.assert_allclose(to_numpy(layer(x)), x, atol=1e-6)
    box = zoo.spatial_filters("box", k, channels=2)
    np.testing.assert_allclose(box.sum(axis=(0, 1)), 1.0, rtol=1e-6)
    assert np.ptp(box) == 0


def high_frequency_fraction(filters, size=64, cutoff=0.25):
    spectrum = np.abs(np.fft.fft2(filters, s=(size, size), axes=(0, 1))) ** 2
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    high = spectrum[radius > cutoff].sum()
    return high / spectrum.sum()


def test_smoothed_filters_have_less_high_frequency_energy():
    raw = zoo.spatial_filters("random", 7, channels=32, depth_multiplier=1, seed=5)
    smoothed = zoo.spatial_filters("smoothed", 7, channels=32, depth_multiplier=1, seed=5, smoothing=1.0)
    stronger = zoo.spatial_filters("smoothed", 7, channels=32, depth_multiplier=1, seed=5, smoothing=2.0)
    assert high_frequency_fraction(smoothed) < 0.5 * high_frequency_fraction(raw)
    assert high_frequency_fraction(stronger) < high_frequency_fraction(smoothed)
    # same norm per filter: only the spectrum changes, not the signal scale
    np.testing.assert_allclose((smoothed**2).sum(axis=(0, 1)), (raw**2).sum(axis=(0, 1)), rtol=1e-4)
