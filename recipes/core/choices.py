"""The names every part of spatialmix agrees on, each defined once: backends, scales, modes.

Light on purpose: the CLI reads these before Keras is imported (Keras picks its backend
at import time, from `KERAS_BACKEND`).
"""

import os

from zoo.modes import MODES  # noqa: F401  (the modes belong to the zoo; re-exported here)

BACKENDS = ("tensorflow", "jax", "torch")
SCALES = ("smoke", "cpu", "paper")

# The fastest backend on CPU for the recipes' training, measured by `spatialmix bench` on
# these 2-core machines (ConvMixer step torch 1274 ms vs TensorFlow 1148 ms within the
# spread; the cpu-scale convmixer-mixing run 280 s on torch vs 313 s on TensorFlow).
DEFAULT_BACKEND = "torch"


def default_backend():
    """The Keras backend of a run or a bench: `$KERAS_BACKEND` if the user set it, else DEFAULT_BACKEND."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def installed_backends():
    """The Keras backends whose framework is importable here, in BACKENDS order."""
    import importlib.util

    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
