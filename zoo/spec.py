"""The zoo's registry record: plain data, no Keras import."""

import dataclasses
from typing import Callable

from zoo.modes import MODES


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One zoo model, as a family module declares it in its `MODELS` dict.

    builder:      config keyword arguments -> keras.Model (its signature gives the defaults)
    description:  one line, for `spatialmix models`
    downsampling: config -> the total down-sampling of the input (input sizes must divide it)
    tiny:         a small config that builds and trains in a second, for the contract tests
    modes:        the mixing modes it supports (a family with no depthwise `*_spatial`
                  layers, e.g. plain VGG, supports only `full`)
    """

    builder: Callable
    description: str
    downsampling: Callable[[dict], int]
    tiny: dict = dataclasses.field(default_factory=dict)
    modes: tuple = MODES
