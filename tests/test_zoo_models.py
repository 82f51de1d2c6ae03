"""Zoo structure and parameter counts (paper A eqs. 1-3). Runs on every backend."""

import keras
import numpy as np
import pytest

import zoo
from tests.helpers import to_numpy

pytestmark = pytest.mark.backends


def small_convmixer(**config):
    return zoo.create_model("convmixer", **{"width": 16, "depth": 2, "kernel_size": 3, "patch_size": 2,
                                            "num_classes": 5, "input_shape": (8, 8, 3), **config})


def small_resnet(**config):
    return zoo.create_model("sep_resnet_cifar", **{"depth": 1, "width": 4, "num_classes": 5,
                                                   "input_shape": (8, 8, 3), **config})


def pairs(model):
    """(spatial layer, the channel layer that consumes it) for every separable conv."""
    names = {layer.name: layer for layer in model.layers}
    for layer in zoo.spatial_layers(model):
        channel = names.get(layer.name.removesuffix("_spatial") + "_channel")
        if channel is not None:
            yield layer, channel


def n_weights(layer):
    return int(sum(np.prod(w.shape) for w in layer.weights))


def test_list_models():
    assert zoo.list_models() == ["convmixer", "convmixer_unshuffler", "mobilenet_v2", "resnet152", "resnet50",
                                 "sep_resnet_cifar", "sep_resnet_imagenet", "squeezenet", "vgg16"]


@pytest.mark.parametrize("k,d", [(3, 9), (3, 3), (5, 2)])
def test_separable_conv_count_is_eq2(k, d):
    model = small_resnet(kernel_size=k, depth_multiplier=d)
    checked = 0
    for spatial, channel in pairs(model):
        c_in = spatial.input.shape[-1]
        c_out = channel.output.shape[-1]
        assert n_weights(spatial) == c_in * k * k * d          # depthwise: c_in·k²·d (no bias)
        assert n_weights(channel) == c_in * d * c_out          # pointwise: c_in·d·c_out
        if d == k * k:                                         # eq. 3: the pointwise matches a k×k conv
            assert n_weights(channel) == c_in * c_out * k * k
        checked += 1
    assert checked == 6 * 1 + 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_cifar_resnet_has_6n_plus_1_spatial_layers(n):
    model = small_resnet(depth=n)
    spatial = zoo.spatial_layers(model)
    assert len(spatial) == 6 * n + 1
    assert all(isinstance(layer, keras.layers.DepthwiseConv2D) and layer.kernel_size == (3, 3)
               for layer in spatial[1:])
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)] == ["classifier"]
    assert model.output.shape == (None, 5)


@pytest.mark.parametrize("n", [1, 2])
def test_imagenet_resnet_has_8n_plus_1_spatial_layers(n):
    model = zoo.create_model("sep_resnet_imagenet", depth=n, width=4, num_classes=7, input_shape=(64, 64, 3))
    assert len(zoo.spatial_layers(model)) == 8 * n + 1
    assert model.get_layer("stem_spatial").kernel_size == (7, 7)
    assert model.output.shape == (None, 7)
    # 4 stages: the last stage is 8× the first stage's width, at 1/32 of the input size
    assert model.get_layer("pool").input.shape[1:] == (2, 2, 32)


def test_convmixer_structure_matches_reference():
    model = small_convmixer(depth=3)
    assert len(zoo.spatial_layers(model)) == 3
    stem = model.get_layer("stem_patch")
    assert stem.kernel_size == (2, 2) and stem.strides == (2, 2)
    for i in (1, 2, 3):
        assert model.get_layer(f"block{i}_spatial").kernel_size == (3, 3)
        assert model.get_layer(f"block{i}_channel").kernel_size == (1, 1)
        assert model.get_layer(f"block{i}_spatial_bn").momentum == pytest.approx(0.9)
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype="float32")
    assert to_numpy(model(x)).shape == (2, 5)


def test_unshuffler_maps_images_to_images():
    model = zoo.create_model("convmixer_unshuffler", width=8, depth=2, kernel_size=3, input_shape=(8, 8, 1))
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype="float32")
    assert to_numpy(model(x)).shape == (2, 8, 8, 1)
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]


@pytest.mark.parametrize("mode", zoo.MODES)
def test_mode_counts(mode):
    width, depth = 16, 2
    model = small_convmixer(mode=mode, width=width, depth=depth)
    c = zoo.count_params(model)
    spatial_total = depth * (3 * 3 * width + width)
    channel_total = depth * (width * width + width)
    assert c["spatial_trainable"] + c["spatial_frozen"] == spatial_total
    assert c["channel_trainable"] + c["channel_frozen"] == channel_total
    expected = {"full": (spatial_total, channel_total), "chans": (0, channel_total), "space": (spatial_total, 0)}
    assert (c["spatial_trainable"], c["channel_trainable"]) == expected[mode]
    stem = 2 * 2 * 3 * width + width
    assert c["other_frozen"] == (stem if mode == "chans" else 0)
    # the six counts are every weight of the model except BN moving statistics
    bn_stats = sum(2 * layer.weights[0].shape[0] for layer in model.layers
                   if isinstance(layer, keras.layers.BatchNormalization))
    assert sum(c.values()) == model.count_params() - bn_stats
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == \
        c["spatial_trainable"] + c["channel_trainable"] + c["other_trainable"]


def test_set_mode_reapplies_on_any_model():
    model = small_resnet(mode="full")
    zoo.set_mode(model, "chans")
    assert zoo.count_params(model)["spatial_trainable"] == 0
    assert all(not layer.trainable for layer in zoo.spatial_layers(model))
    assert model.get_layer("final_bn").trainable and model.get_layer("classifier").trainable
    zoo.set_mode(model, "space")
    c = zoo.count_params(model)
    assert c["channel_trainable"] == 0 and c["spatial_frozen"] == 0


def test_wide_resnet_width_multiplier():
    base = small_resnet(width=4)
    wide = small_resnet(width=4, width_multiplier=2.0)
    assert base.get_layer("pool").input.shape[-1] == 16
    assert wide.get_layer("pool").input.shape[-1] == 32
