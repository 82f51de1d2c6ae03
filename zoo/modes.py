"""Mixing modes as a function over the graph: what is learned and what stays frozen.

A layer's role is read from its name, so the mode can be re-applied to a loaded
checkpoint with no import of the builder that made it:
- `*_spatial`: a depthwise conv, the spatial mixer;
- `*_channel`: a 1×1 conv, the channel mixer;
- `*_patch`:   the ConvMixer patch stem (mixes both; frozen in `chans`, paper A §4.2);
- anything else (BN, classifier, head, rescaling) is `other` and stays trainable.

Keras freezes whole layers, and only the layer flag survives a `.keras` checkpoint,
so a frozen mixer's bias (the ConvMixer reference keeps conv biases) freezes with it.
"""

import numpy as np

from zoo.errors import SpatialmixError, check_choice
from zoo.filters import spatial_filters

MODES = ("full", "chans", "space")

# mode -> role -> trainable
_TRAINABLE = {
    "full": {"spatial": True, "channel": True, "patch": True, "other": True},
    "chans": {"spatial": False, "channel": True, "patch": False, "other": True},
    "space": {"spatial": True, "channel": False, "patch": True, "other": True},
}


def layer_role(layer):
    """`spatial`, `channel`, `patch` or `other`, from the layer's name."""
    suffix = layer.name.rsplit("_", 1)[-1]
    return suffix if suffix in ("spatial", "channel", "patch") else "other"


def spatial_layers(model):
    return [layer for layer in model.layers if layer_role(layer) == "spatial"]


def _check_zoo_model(model):
    if not spatial_layers(model):
        raise SpatialmixError(
            f"model {model.name!r} has no layer named '*_spatial'; set_mode and count_params "
            "work on spatialmix zoo models (zoo.create_model)"
        )


def set_mode(model, mode):
    """Freeze/unfreeze the model's layers for `mode` (full | chans | space), in place.

    Set the mode before `compile`, or compile again after changing it.
    Returns the model.
    """
    check_choice("mode", mode, MODES)
    _check_zoo_model(model)
    for layer in model.layers:
        if layer.weights:
            layer.trainable = _TRAINABLE[mode][layer_role(layer)]
    return model


def _learnable(layer):
    # BN moving statistics are never learned in any mode: they are not parameters.
    return [w for w in layer.weights if not w.path.endswith(("moving_mean", "moving_variance"))]


class ParamCounts(dict):
    """A dict of counts that prints as `spatial_trainable: 0, spatial_frozen: 53248, ...`."""

    def __repr__(self):
        return ", ".join(f"{k}: {v}" for k, v in self.items())


def count_params(model):
    """Parameter counts by role and trainability.

    Keys: spatial_trainable, spatial_frozen, channel_trainable, channel_frozen,
    other_trainable, other_frozen. The ConvMixer patch stem counts as `other`;
    BatchNorm moving statistics are not parameters and are not counted.
    """
    _check_zoo_model(model)
    counts = ParamCounts((f"{r}_{t}", 0) for r in ("spatial", "channel", "other") for t in ("trainable", "frozen"))
    for layer in model.layers:
        role = layer_role(layer)
        role = "other" if role == "patch" else role
        state = "trainable" if layer.trainable else "frozen"
        counts[f"{role}_{state}"] += int(sum(np.prod(w.shape) for w in _learnable(layer)))
    return counts


def init_spatial(model, filters="random", seed=0, smoothing=1.0):
    """Set every spatial layer's kernel to `filters` kind (zoo.filters), seeded per layer."""
    for index, layer in enumerate(spatial_layers(model)):
        k, _, channels, d = layer.kernel.shape
        value = spatial_filters(filters, k, channels, d, seed=[seed, index], smoothing=smoothing)
        layer.kernel.assign(value)
    return model
