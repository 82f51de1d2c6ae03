"""Shared test helpers."""

import os
import subprocess
import sys

import keras
import numpy as np


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def run_python(code, backend, timeout=300, cwd=None, env=None):
    """Run `code` in a fresh interpreter under `backend`; return the completed process."""
    full_env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=full_env)


def other_backends():
    from recipes.core.choices import BACKENDS

    return [b for b in BACKENDS if b != keras.backend.backend()]
