"""spatialmix zoo: models only. A config goes in, a plain `keras.Model` comes out.

    import zoo
    model = zoo.create_model("convmixer", width=256, depth=8, kernel_size=5, patch_size=2, mode="chans")
    zoo.count_params(model)       # spatial/channel/other × trainable/frozen
    zoo.set_mode(model, "full")   # works on a loaded checkpoint too
"""

from zoo.errors import SpatialmixError
from zoo.filters import FILTER_KINDS, spatial_filters
from zoo.modes import MODES, count_params, init_spatial, layer_role, set_mode, spatial_layers
from zoo.registry import create_model, list_models, model_defaults

__all__ = [
    "SpatialmixError", "FILTER_KINDS", "MODES", "count_params", "create_model", "init_spatial",
    "layer_role", "list_models", "model_defaults", "set_mode", "spatial_filters", "spatial_layers",
]
