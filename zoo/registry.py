"""`list_models()` and `create_model(name, **config)`: the zoo's one entry point.

The registry finds its members itself: every module of the `zoo` package that defines
`MODELS = {name: zoo.spec.ModelEntry(...)}` contributes them. A new family is one new
module; the contract tests (tests/test_contracts.py) iterate over `list_models()`.
"""

import importlib
import inspect
import pkgutil

import zoo
from zoo.errors import SpatialmixError, check, check_choice, check_positive_int
from zoo.filters import FILTER_KINDS
from zoo.modes import MODES, init_spatial, set_mode, spatial_layers
from zoo.spec import ModelEntry  # noqa: F401


def _families():
    """{name: ModelEntry} from every zoo module that declares MODELS."""
    found = {}
    for info in sorted(pkgutil.iter_modules(zoo.__path__), key=lambda i: i.name):
        if info.name == "registry":
            continue
        module = importlib.import_module(f"zoo.{info.name}")
        for name, entry in getattr(module, "MODELS", {}).items():
            assert name not in found, f"zoo model {name!r} is declared twice"
            found[name] = entry
    return found


MODELS = _families()  # name -> ModelEntry

COMMON = {"mode": "full", "filters": "random", "smoothing": 1.0, "seed": 0}


def list_models():
    """Names of the zoo's models."""
    return sorted(MODELS)


def tiny_config(name):
    """A small config of `name` that builds in a second (the contract tests use it)."""
    check_choice("model", name, list_models())
    return dict(MODELS[name].tiny)


def model_defaults(name):
    """The full default config of `name`, common keys included."""
    check_choice("model", name, list_models())
    builder = MODELS[name].builder
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
    model = MODELS[name].builder(**builder_args)
    if MODELS[name].modes == ("full",):  # no depthwise spatial mixers: nothing to initialise or freeze
        return model
    if full["mode"] == "full" and not spatial_layers(model):  # e.g. mobilenet_v2 with every depthwise removed
        return model
    init_spatial(model, full["filters"], seed=full["seed"], smoothing=full["smoothing"])
    return set_mode(model, full["mode"])


def _validate(name, c):
    check_choice("mode", c["mode"], MODES)
    check(c["mode"] in MODELS[name].modes,
          f"model {name!r} supports mode {', '.join(MODELS[name].modes)} only, not {c['mode']!r}")
    check_choice("filter kind", c["filters"], FILTER_KINDS)
    check(_is_number(c["smoothing"]) and c["smoothing"] > 0, f"smoothing must be a number > 0, got {c['smoothing']!r}")
    check_positive_int("seed", c["seed"], minimum=0)
    for key in ("depth", "width", "kernel_size", "patch_size", "num_classes", "depth_multiplier"):
        if key in c:
            check_positive_int(key, c[key])
    if "width_multiplier" in c:
        check(_is_number(c["width_multiplier"]) and c["width_multiplier"] > 0,
              f"width_multiplier must be a number > 0, got {c['width_multiplier']!r}")
        if "width" in c:
            check(round(c["width"] * c["width_multiplier"]) >= 1,
                  "width × width_multiplier must round to at least 1 channel")
    shape = c["input_shape"]
    check(isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape),
          f"input_shape must be (height, width, channels) of positive integers, got {shape!r}")
    stride = MODELS[name].downsampling(c)
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


__all__ = ["list_models", "create_model", "model_defaults", "tiny_config", "MODELS", "SpatialmixError"]
