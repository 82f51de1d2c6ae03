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

# The backend for many tiny models (tuner trials, the shipped presets): TensorFlow ran a
# ConvMixer-16/2 on textures at 1.3 s/epoch against 12 s on JAX and 41 s on PyTorch (measured
# on one machine), and with op determinism it rebuilds the presets to the same weights.
SMALL_MODEL_BACKEND = "tensorflow"


def default_backend(small_models=False):
    """The Keras backend of a run or a bench: `$KERAS_BACKEND` if the user set it, else
    DEFAULT_BACKEND (SMALL_MODEL_BACKEND for `tune` and `zoo build`, `small_models=True`)."""
    return os.environ.get("KERAS_BACKEND") or (SMALL_MODEL_BACKEND if small_models else DEFAULT_BACKEND)


def installed_backends():
    """The Keras backends whose framework is importable here, in BACKENDS order."""
    import importlib.util

    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
