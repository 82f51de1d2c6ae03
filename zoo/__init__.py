"""spatialmix zoo: models only. A config goes in, a plain `keras.Model` comes out.

    import zoo
    model = zoo.create_model("convmixer", width=256, depth=8, kernel_size=5, patch_size=2, mode="chans")
    zoo.count_params(model)       # spatial/channel/other × trainable/frozen
    zoo.set_mode(model, "full")   # works on a loaded checkpoint too

Names are loaded on first use, so `import zoo.errors` does not import Keras (the CLI
must set the backend before Keras is imported).
"""

import importlib

_EXPORTS = {
    "SpatialmixError": "zoo.errors",
    "FILTER_KINDS": "zoo.filters", "spatial_filters": "zoo.filters",
    "MODES": "zoo.modes", "count_params": "zoo.modes", "init_spatial": "zoo.modes", "layer_role": "zoo.modes",
    "set_mode": "zoo.modes", "spatial_layers": "zoo.modes",
    "create_model": "zoo.registry", "list_models": "zoo.registry", "model_defaults": "zoo.registry",
    "tiny_config": "zoo.registry",
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
