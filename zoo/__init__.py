"""spatialmix zoo: models only. A config goes in, a plain `keras.Model` comes out.

    import zoo
    model = zoo.create_model("convmixer", width=256, depth=8, kernel_size=5, patch_size=2, mode="chans")
    zoo.count_params(model)       # spatial/channel/other × trainable/frozen
    zoo.set_mode(model, "full")   # works on a loaded checkpoint too

Names are loaded on first use, so `import zoo.errors` does not import Keras (the CLI
must set the backend before Keras is imported).

Checkpoints with paper B's shuffle layers (`spatial_method="shuffle"` or "channel_shuffle")
need the layers registered before `keras.models.load_model`: use `zoo.load_model(path)`, or
`import zoo.spatial_info`; `import zoo` registers them itself when Keras is already imported.
Every other zoo checkpoint loads with plain Keras.
"""

import importlib
import sys

_EXPORTS = {
    "SpatialmixError": "zoo.errors",
    "FILTER_KINDS": "zoo.filters", "spatial_filters": "zoo.filters",
    "MODES": "zoo.modes", "count_params": "zoo.modes", "init_spatial": "zoo.modes", "layer_role": "zoo.modes",
    "set_mode": "zoo.modes", "spatial_layers": "zoo.modes",
    "create_model": "zoo.registry", "list_models": "zoo.registry", "model_defaults": "zoo.registry",
    "tiny_config": "zoo.registry",
    "SpatialShuffle": "zoo.spatial_info", "ChannelShuffle": "zoo.spatial_info", "load_model": "zoo.spatial_info",
    "reseed_shuffles": "zoo.spatial_info",
    "list_pretrained": "zoo.presets", "pretrained": "zoo.presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return __all__


if "keras" in sys.modules:  # the backend is chosen already: register the shuffle layers now
    importlib.import_module("zoo.spatial_info")
