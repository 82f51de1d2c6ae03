"""The runtime the engine trains on: threads, the allocator, compile settings and the fast
ops of each backend; data-parallel training is its `distribute` module. Same models, same
checkpoints, faster training steps on CPU.

What the engine calls (once per process, before it builds a model; best before `import keras`):

    import os
    from recipes.core import runtime
    from recipes.core.choices import default_backend
    os.environ.setdefault("KERAS_BACKEND", default_backend())   # before `import keras`
    settings = runtime.configure_runtime()   # threads, allocator, the backend's fast ops; returns what it set
    model.compile(..., **runtime.compile_kwargs())

- `configure_runtime(backend=None, *, fast_ops=True) -> dict`: idempotent.
- `compile_kwargs(backend=None) -> dict`: extra `model.compile` keyword arguments.
- `fast_ops_wanted()`: False if the user set SPATIALMIX_FAST_OPS=0.
- `apply_fast_ops()`, `remove_fast_ops()`, `plain_ops()` (context manager), `fast_ops_active()`:
  for comparisons and tests (the bench, recipes.perf, times both).
- `distribute`: `spatialmix run --distribute` (JAX DataParallel, TensorFlow MirroredStrategy).

The ops themselves are one module per backend: `ops_torch`, `ops_tensorflow`, `ops_jax`
(each says what its profile showed and what it swaps). Nothing changes a model or what a
checkpoint holds: the zoo's models stay plain built-in Keras layers in channels-last
format, `model.to_json()` is the same with and without the fast ops, and a checkpoint
saved with them loads anywhere with stock Keras. `apply_fast_ops` swaps backend functions /
layer `call`s for faster equivalents; each falls back to the original for anything it
does not cover (other data formats, dilation, masks, renorm, mixed precision, ...).

Numerics: outputs, input and weight gradients and BN moving statistics equal the plain path's
to float32 rounding (tests/test_bench.py, every backend). The GELU formulas differ by < 1e-6
in absolute value (where 1 + erf(x) cancels, x < -4, GELU itself is < 1e-4).
"""

from __future__ import annotations

import contextlib
import importlib
import os

from recipes.core.choices import default_backend

_PATCHES: list = []  # (owner, attribute, original) of every swapped-in op, for removal
_STATE = {"backend": None, "runtime": None}


def fast_ops_wanted():
    """False if the user set SPATIALMIX_FAST_OPS=0 (train on Keras's own ops, e.g. to compare)."""
    return os.environ.get("SPATIALMIX_FAST_OPS", "1") != "0"


def _current_backend(backend=None):
    if backend:
        return backend
    import sys

    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    return default_backend()


def configure_runtime(backend=None, *, fast_ops=True):
    """Thread settings, the allocator (torch) and the backend's fast ops. Returns what was set.

    Call once before the first model is built: TensorFlow's thread counts can only be set
    before its runtime starts (later calls keep the settings it has and say so in the result).
    Calling it again is harmless.
    """
    backend = _current_backend(backend)
    settings = {"backend": backend}
    cores = os.cpu_count() or 1
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_inter_op_parallelism_threads(1)
            tf.config.threading.set_intra_op_parallelism_threads(cores)
        except RuntimeError:  # the TF runtime is already initialised: keep its settings
            pass
        settings["tf_inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        settings["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    elif backend == "torch":
        import torch

        if torch.get_num_threads() != cores:
            torch.set_num_threads(cores)
        settings["torch_threads"] = torch.get_num_threads()
    if backend == "torch" and os.environ.get("SPATIALMIX_MALLOC_TUNING", "1") != "0":
        settings["malloc"] = _tune_malloc()
    if fast_ops:
        settings["fast_ops"] = apply_fast_ops(backend)
    _STATE["runtime"] = settings
    return settings


def _tune_malloc():
    """Keep freed activation buffers in the process (glibc): with the defaults, a 16 MB
    activation is mmap-ed and munmap-ed at every op, and each fresh page faults in."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1  # glibc's maximum
        ok = libc.mallopt(m_trim_threshold, 1 << 30) == 1 and ok
        return ok
    except (OSError, AttributeError):
        return False


def compile_kwargs(backend=None):
    """Extra keyword arguments for `model.compile` (measured best per backend on CPU).

    - tensorflow: `jit_compile=False` (Keras's own CPU default, made explicit): with XLA the
      depthwise conv becomes XLA:CPU's grouped convolution — ConvMixer-256/8 chans measured
      ~12 s/step against ~1 s on TF's native kernels.
    - torch: `jit_compile=False` (eager): `torch.compile` took 72 s to compile the step,
      recompiled, and ran chans at 1.2-1.4 s/step against 0.8-0.9 s eager with the fast ops.
    - jax: nothing (Keras always jits on JAX).
    """
    backend = _current_backend(backend)
    if backend == "tensorflow":
        return {"jit_compile": False}
    if backend == "torch":
        return {"jit_compile": False}
    return {}


# --------------------------------------------------------------------------- patching


def _patch(owner, name, value):
    """Set owner.name = value, remembering how to undo it (a class attribute that was only
    inherited is deleted again, not copied down)."""
    own = name in vars(owner)
    _PATCHES.append((owner, name, vars(owner)[name] if own else None, own))
    setattr(owner, name, value)


def _patched_names():
    return [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name, _, _ in _PATCHES]


def apply_fast_ops(backend=None):
    """Swap in the fast ops of `backend` (default: keras's). Returns their names.

    If this Keras version lacks an internal a fast op relies on, nothing is swapped in and
    a warning says so: training then runs on the plain ops, never fails because of them.
    """
    backend = _current_backend(backend)
    if _STATE["backend"] == backend:
        return _patched_names()
    remove_fast_ops()
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(f"keras runs on {keras.backend.backend()!r}, not {backend!r}")
    try:
        _apply(keras, backend)
    except (AttributeError, ImportError, TypeError) as error:
        import warnings

        remove_fast_ops()
        warnings.warn(f"spatialmix: fast ops for {backend} not applied ({error!r}); using Keras's own ops",
                      stacklevel=2)
        return []
    _STATE["backend"] = backend
    return _patched_names()


def _apply(keras, backend):
    importlib.import_module(f"recipes.core.runtime.ops_{backend}").apply(_patch, keras)


def remove_fast_ops():
    """Put the original ops back."""
    while _PATCHES:
        owner, name, original, own = _PATCHES.pop()
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)
    _STATE["backend"] = None


@contextlib.contextmanager
def plain_ops():
    """Run a block with the original Keras ops (for comparisons); fast ops come back after."""
    backend = _STATE["backend"]
    remove_fast_ops()
    try:
        yield
    finally:
        if backend:
            apply_fast_ops(backend)


def fast_ops_active():
    return _STATE["backend"] is not None


# --------------------------------------------------------------------------- shared by the ops modules


def _dtype(x):
    from keras import backend

    return backend.standardize_dtype(x.dtype)


def _bn_fast_ok(layer, inputs, mask):
    return (mask is None and not layer.renorm and not layer.synchronized and layer.scale and layer.center
            and len(inputs.shape) == 4 and layer.axis in (3, -1)
            and _dtype(inputs) == "float32" and layer.compute_dtype == "float32"
            and layer.variable_dtype == "float32")


def make_bn_call(original, impl):
    """`BatchNormalization.call` that runs `impl(layer, inputs, training)` where it applies
    (float32, NHWC, no mask/renorm), else the original."""

    def call(self, inputs, training=None, mask=None):
        if not _bn_fast_ok(self, inputs, mask):
            return original(self, inputs, training=training, mask=mask)
        return impl(self, inputs, bool(training and self.trainable))

    call.__wrapped__ = original
    return call
