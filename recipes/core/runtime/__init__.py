"""The runtime the engine trains on: threads, the allocator, compile settings and the fast
ops of each backend, chosen per device (CPU or GPU), and the numeric precision;
data-parallel training is its `distribute` module. Same models, same checkpoints.

What the engine calls (once per process, before it builds a model; best before `import keras`):

    import os
    from recipes.core import runtime
    from recipes.core.choices import default_backend
    os.environ.setdefault("KERAS_BACKEND", default_backend())   # before `import keras`
    settings = runtime.configure_runtime()   # threads, allocator, the backend's fast ops; returns what it set
    model.compile(..., **runtime.compile_kwargs())

- `configure_runtime(backend=None, *, fast_ops=True) -> dict`: idempotent. It records the
  device, the GPUs and the precision in what it returns (run.json keeps it).
- `compile_kwargs(backend=None, device=None) -> dict`: extra `model.compile` keyword arguments.
- `device_kind(backend)`: "gpu" when the backend sees a GPU, else "cpu"; `gpus(backend)`.
- `choices(backend, device)`: what that backend gets on that device (the table below).
- `resolve_precision(requested, scale, backend)`, `set_precision(name)`, `precision()`:
  Keras dtype policies (`spatialmix run/tune --precision`).
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

CPU and GPU get separate choices (`choices`), each the frameworks' documented path:

| backend    | CPU                                   | GPU                                                   |
|------------|---------------------------------------|-------------------------------------------------------|
| tensorflow | eager kernels (`jit_compile=False`), fast ops | XLA (`jit_compile=True`, as Keras's "auto" picks on a GPU; off under a tf.distribute strategy), no fast ops: XLA fuses BN and GELU itself |
| torch      | eager, fast ops                       | eager, fast ops (device-agnostic `F.conv2d` / native batch norm: cuDNN runs the channels-last view), `cudnn.benchmark` (fixed shapes) and TF32 matmuls (`set_float32_matmul_precision("high")`, what TF and JAX do by default) |
| jax        | jit (always), fast ops                | jit, no fast ops: they work around XLA:CPU's grouped convolution, which XLA:GPU hands to cuDNN |

The GPU column was chosen from the frameworks' documentation, not measured here (these
machines have no GPU); `scripts/gpu-check.sh` times it (fast and plain) on a GPU machine.
Feeding the device: every tf.data pipeline ends in `prefetch(AUTOTUNE)` (the next batches
are decoded and augmented while the step runs); on a GPU, Keras's JAX trainer also copies
the next batch to the device one step ahead.

Precision: `float32` (default), or Keras's mixed policies `mixed_bfloat16` / `mixed_float16`
(weights float32, compute in 16 bits). `mixed_float16` compiles with Keras's loss scaling
(`compile(auto_scale_loss=True)`, its default, wraps the optimizer in a
`LossScaleOptimizer`). The zoo's classifiers and the un-shuffler keep their last layer in
float32, so logits and losses stay float32. `resolve_precision("auto", scale)`: float32,
except at paper scale on a GPU: `mixed_bfloat16` where every GPU has compute capability ≥ 8.0
(A100, H100, RTX 30xx and newer), `mixed_float16` on 7.x (V100, T4, RTX 20xx), float32 below.
"""

from __future__ import annotations

import contextlib
import importlib
import os

from recipes.core.choices import default_backend
from zoo.errors import check_choice

_PATCHES: list = []  # (owner, attribute, original) of every swapped-in op, for removal
_STATE = {"backend": None, "runtime": None}

DEVICES = ("cpu", "gpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# What each backend gets on each device (see the module docstring for why).
_CHOICES = {
    ("tensorflow", "cpu"): {"jit_compile": False, "fast_ops": True},
    ("tensorflow", "gpu"): {"jit_compile": True, "fast_ops": False},
    ("torch", "cpu"): {"jit_compile": False, "fast_ops": True},
    ("torch", "gpu"): {"jit_compile": False, "fast_ops": True, "cudnn_benchmark": True,
                       "float32_matmul_precision": "high"},
    ("jax", "cpu"): {"fast_ops": True},
    ("jax", "gpu"): {"fast_ops": False},
}


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


def gpus(backend=None):
    """The GPUs `backend` sees: [{"name", "compute_capability" (a float such as 8.0, or None)}].
    Asks the framework itself (torch.cuda, jax.devices, tf.config); [] when there is none."""
    backend = _current_backend(backend)
    found = []
    try:
        if backend == "torch":
            import torch

            for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
                major, minor = torch.cuda.get_device_capability(i)
                found.append({"name": torch.cuda.get_device_name(i), "compute_capability": major + minor / 10})
        elif backend == "jax":
            import jax

            for d in jax.devices():
                if d.platform == "gpu":
                    cc = getattr(d, "compute_capability", None)
                    found.append({"name": d.device_kind, "compute_capability": float(cc) if cc else None})
        elif backend == "tensorflow":
            import tensorflow as tf

            for d in tf.config.list_physical_devices("GPU"):
                details = tf.config.experimental.get_device_details(d)
                cc = details.get("compute_capability")
                found.append({"name": details.get("device_name", d.name),
                              "compute_capability": cc[0] + cc[1] / 10 if cc else None})
    except RuntimeError:  # a framework that cannot initialise its GPU runtime: no GPU for us
        return []
    return found


def device_kind(backend=None):
    """'gpu' when `backend` sees a GPU, else 'cpu'."""
    return "gpu" if gpus(backend) else "cpu"


def choices(backend=None, device=None):
    """What `backend` gets on `device` (default: the one it sees): jit/XLA, fast ops, GPU settings."""
    backend = _current_backend(backend)
    device = device or device_kind(backend)
    check_choice("device", device, DEVICES)
    return dict(_CHOICES[backend, device])


def configure_runtime(backend=None, *, fast_ops=True):
    """Thread settings, the allocator (torch), the device's choices and the backend's fast ops
    where that device gets them. Returns what was set (device, GPUs and precision included).

    Call once before the first model is built: TensorFlow's thread counts can only be set
    before its runtime starts (later calls keep the settings it has and say so in the result).
    Calling it again is harmless.
    """
    backend = _current_backend(backend)
    found = gpus(backend)
    device = "gpu" if found else "cpu"
    choice = choices(backend, device)
    settings = {"backend": backend, "device": device, "precision": precision()}
    if found:
        settings["gpus"] = [g["name"] for g in found]
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
    if backend == "torch" and device == "gpu":
        import torch

        torch.backends.cudnn.benchmark = choice["cudnn_benchmark"]   # fixed shapes: autotune once
        torch.set_float32_matmul_precision(choice["float32_matmul_precision"])
        settings["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        settings["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    if backend == "torch" and device == "cpu" and os.environ.get("SPATIALMIX_MALLOC_TUNING", "1") != "0":
        settings["malloc"] = _tune_malloc()
    if fast_ops and choice["fast_ops"]:
        settings["fast_ops"] = apply_fast_ops(backend)
    else:
        remove_fast_ops()
        settings["fast_ops"] = []
    _STATE["runtime"] = settings
    return settings


def resolve_precision(requested, scale=None, backend=None):
    """The dtype policy a run uses: `requested` if it names one of PRECISIONS; for "auto" (or
    None), float32 except at paper scale on a GPU, where the GPU's compute capability picks
    (≥ 8.0: mixed_bfloat16; 7.x: mixed_float16; below, or unknown: float32)."""
    check_choice("precision", requested or "auto", ("auto", *PRECISIONS))
    if requested not in (None, "auto"):
        return requested
    found = gpus(backend) if scale == "paper" else []
    if not found:
        return "float32"
    capability = min((g["compute_capability"] or 0.0) for g in found)
    if capability >= 8.0:
        return "mixed_bfloat16"
    return "mixed_float16" if capability >= 7.0 else "float32"


def set_precision(name):
    """Make `name` (one of PRECISIONS) Keras's global dtype policy: models built from now on
    compute in it. Returns the name."""
    check_choice("precision", name, PRECISIONS)
    import keras

    keras.mixed_precision.set_dtype_policy(name)
    if _STATE["runtime"] is not None:
        _STATE["runtime"]["precision"] = name
    return name


def precision():
    """Keras's global dtype policy now ("float32" before Keras is imported)."""
    import sys

    keras = sys.modules.get("keras")
    if keras is None or not hasattr(keras, "config"):
        return "float32"
    return keras.config.dtype_policy().name


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


def compile_kwargs(backend=None, device=None):
    """Extra keyword arguments for `model.compile`, per backend and device (`device` default:
    the one the backend sees).

    CPU (measured best on CPU):
    - tensorflow: `jit_compile=False` (Keras's own CPU default, made explicit): with XLA the
      depthwise conv becomes XLA:CPU's grouped convolution — ConvMixer-256/8 chans measured
      ~12 s/step against ~1 s on TF's native kernels.
    - torch: `jit_compile=False` (eager): `torch.compile` took 72 s to compile the step,
      recompiled, and ran chans at 1.2-1.4 s/step against 0.8-0.9 s eager with the fast ops.
    - jax: nothing (Keras always jits on JAX).
    GPU: tensorflow `jit_compile=True` (XLA; what Keras's "auto" picks on a GPU), except inside
    a tf.distribute strategy (Keras's rule too); torch eager; jax nothing (always jitted).
    """
    backend = _current_backend(backend)
    choice = choices(backend, device)
    if "jit_compile" not in choice:
        return {}
    jit = choice["jit_compile"]
    if jit and backend == "tensorflow":
        import tensorflow as tf

        jit = not tf.distribute.has_strategy()
    return {"jit_compile": jit}


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
