"""`list_models()` and `create_model(name, **config)`: the zoo's one entry point."""

import inspect

from zoo.convmixer import convmixer, convmixer_unshuffler
from zoo.errors import SpatialmixError, check, check_choice, check_positive_int
from zoo.filters import FILTER_KINDS
from zoo.modes import MODES, init_spatial, set_mode
from zoo.sep_resnet import sep_resnet


def sep_resnet_cifar(depth=3, width=16, width_multiplier=1.0, depth_multiplier=9, kernel_size=3,
                     num_classes=10, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    return sep_resnet("cifar", depth, width, width_multiplier, depth_multiplier, kernel_size,
                      num_classes, input_shape, mean, std)


def sep_resnet_imagenet(depth=2, width=64, width_multiplier=1.0, depth_multiplier=9, kernel_size=3,
                        num_classes=1000, input_shape=(224, 224, 3), mean=0.0, std=1.0):
    return sep_resnet("imagenet", depth, width, width_multiplier, depth_multiplier, kernel_size,
                      num_classes, input_shape, mean, std)


# name -> (builder, one-line description, the total down-sampling of the input)
MODELS = {
    "sep_resnet_cifar": (sep_resnet_cifar, "separable pre-activation ResNet, CIFAR variant (6n+2 layers)", lambda c: 4),
    "sep_resnet_imagenet": (sep_resnet_imagenet, "separable pre-activation ResNet, ImageNet variant (8n+2 layers)", lambda c: 32),
    "convmixer": (convmixer, "ConvMixer-w/n (k, p) with a linear classifier", lambda c: c["patch_size"]),
    "convmixer_unshuffler": (convmixer_unshuffler, "patch-size-1 ConvMixer with a 1×1 projection back to the image (paper A §4.4)", lambda c: 1),
}

COMMON = {"mode": "full", "filters": "random", "smoothing": 1.0, "seed": 0}


def list_models():
    """Names of the zoo's models."""
    return sorted(MODELS)


def model_defaults(name):
    """The full default config of `name`, common keys included."""
    check_choice("model", name, list_models())
    builder = MODELS[name][0]
    params = inspect.signature(builder).parameters
    return {**{k: p.default for k, p in params.items()}, **COMMON}


def create_model(name, **config):
    """Build zoo model `name` as a plain `keras.Model`.

    Common config: `mode` (full | chans | space), `filters` (the spatial filter kind:
    random | same | box | identity | smoothed, see zoo.filters), `smoothing` (Gaussian
    std in pixels, for `smoothed`), `seed` (of the spatial filters). Other keys are the
    builder's (see `model_defaults(name)`). Images go in scaled to [0, 1]; `mean` and
    `std` (the dataset's) are applied inside the model. Classifiers output logits.
    """
    full = model_defaults(name)
    unknown = sorted(set(config) - set(full))
    check(not unknown, f"unknown config {', '.join(unknown)} for model {name!r}; allowed: {', '.join(sorted(full))}")
    full.update(config)
    _validate(name, full)
    builder_args = {k: v for k, v in full.items() if k not in COMMON}
    model = MODELS[name][0](**builder_args)
    init_spatial(model, full["filters"], seed=full["seed"], smoothing=full["smoothing"])
    return set_mode(model, full["mode"])


def _validate(name, c):
    check_choice("mode", c["mode"], MODES)
    check_choice("filter kind", c["filters"], FILTER_KINDS)
    check(_is_number(c["smoothing"]) and c["smoothing"] > 0, f"smoothing must be a number > 0, got {c['smoothing']!r}")
    check_positive_int("seed", c["seed"], minimum=0)
    for key in ("depth", "width", "kernel_size", "patch_size", "num_classes", "depth_multiplier"):
        if key in c:
            check_positive_int(key, c[key])
    if "width_multiplier" in c:
        check(_is_number(c["width_multiplier"]) and c["width_multiplier"] > 0,
              f"width_multiplier must be a number > 0, got {c['width_multiplier']!r}")
        check(round(c["width"] * c["width_multiplier"]) >= 1, "width × width_multiplier must round to at least 1 channel")
    shape = c["input_shape"]
    check(isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape),
          f"input_shape must be (height, width, channels) of positive integers, got {shape!r}")
    stride = MODELS[name][2](c)
    check(shape[0] % stride == 0 and shape[1] % stride == 0,
          f"input size {shape[0]}×{shape[1]} is not divisible by {stride}, the down-sampling of {name!r}"
          + (f" (patch_size={c['patch_size']})" if "patch_size" in c else "") + "; choose a size that is")
    for key in ("mean", "std"):
        values = c[key] if isinstance(c[key], (list, tuple)) else [c[key]]
        check(all(_is_number(v) for v in values) and len(values) in (1, shape[2]),
              f"{key} must be a number or one number per channel ({shape[2]}), got {c[key]!r}")
    check(all(v > 0 for v in (c["std"] if isinstance(c["std"], (list, tuple)) else [c["std"]])),
          f"std must be > 0, got {c['std']!r}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["list_models", "create_model", "model_defaults", "MODELS", "SpatialmixError"]
