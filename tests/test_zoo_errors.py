"""Bad configs raise the project's one error type, with a message that names the problem."""

import keras
import pytest

import zoo
from zoo import SpatialmixError

pytestmark = pytest.mark.backends

CM = dict(width=8, depth=1, kernel_size=3, patch_size=2, num_classes=3, input_shape=(8, 8, 3))

BAD = [
    ("nosuchnet", {}, ["'nosuchnet'", "convmixer"]),
    ("convmixer", {**CM, "mode": "spatial"}, ["'spatial'", "full", "chans", "space"]),
    ("convmixer", {**CM, "filters": "gabor"}, ["'gabor'", "random", "smoothed"]),
    ("convmixer", {**CM, "depth": 0}, ["depth", "0", ">= 1"]),
    ("sep_resnet_cifar", {"depth": 0}, ["depth", "0"]),
    ("convmixer", {**CM, "width": -4}, ["width", "-4"]),
    ("convmixer", {**CM, "width": 0}, ["width", "0"]),
    ("convmixer", {**CM, "patch_size": 3}, ["8×8", "divisible by 3", "patch_size=3"]),
    ("sep_resnet_imagenet", {"input_shape": (100, 100, 3)}, ["100×100", "32"]),
    ("convmixer", {**CM, "kernel_size": 2.5}, ["kernel_size", "2.5"]),
    ("convmixer", {**CM, "smoothing": 0}, ["smoothing", "0"]),
    ("convmixer", {**CM, "widht": 8}, ["widht", "width"]),
    ("convmixer", {**CM, "input_shape": (8, 8)}, ["input_shape", "(8, 8)"]),
    ("convmixer", {**CM, "std": [0.2, 0.0, 0.3]}, ["std", "> 0"]),
    ("sep_resnet_cifar", {"width_multiplier": -1.0}, ["width_multiplier", "-1.0"]),
]


@pytest.mark.parametrize("name,config,words", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_config_raises_project_error(name, config, words):
    with pytest.raises(SpatialmixError) as info:
        zoo.create_model(name, **config)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_set_mode_rejects_bad_mode_and_foreign_models():
    model = zoo.create_model("convmixer", **CM)
    with pytest.raises(SpatialmixError, match="'frozen'"):
        zoo.set_mode(model, "frozen")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(SpatialmixError, match="_spatial"):
        zoo.set_mode(plain, "chans")
    with pytest.raises(SpatialmixError, match="_spatial"):
        zoo.count_params(plain)
