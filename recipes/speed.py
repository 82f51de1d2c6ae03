"""Speed settings of the training engine: same models, same checkpoints, faster steps on CPU.

What the engine calls (once per process, before it builds a model; best before `import keras`):

    import os
    from recipes import speed
    os.environ.setdefault("KERAS_BACKEND", speed.default_backend())  # before `import keras`
    settings = speed.configure_runtime()   # threads, allocator, the backend's fast ops; returns what it set
    model.compile(..., **speed.compile_kwargs())

- `default_backend()`: `KERAS_BACKEND` if the user set it, else `RECOMMENDED_CPU_BACKEND`
  ("torch": measured fastest for the ConvMixer and the separable ResNet on this 2-core CPU,
  see "Performance" in README.md).
- `configure_runtime(backend=None, *, fast_ops=True) -> dict`: idempotent.
- `compile_kwargs(backend=None) -> dict`: extra `model.compile` keyword arguments.
- `apply_fast_ops()`, `remove_fast_ops()`, `plain_ops()` (context manager), `fast_ops_active()`:
  for comparisons and tests.

Nothing here changes a model or what a checkpoint holds: the zoo's models stay plain built-in
Keras layers (`DepthwiseConv2D`, `Conv2D`, `BatchNormalization`, `Activation("gelu")`, ...)
in channels-last format, `model.to_json()` is the same with and without the fast ops, and a
checkpoint saved with them loads anywhere with stock Keras. What changes is how this process
computes a few built-in ops: `apply_fast_ops` swaps backend functions / layer `call`s for
faster equivalents; each falls back to the original for anything it does not cover (other
data formats, dilation, masks, renorm, mixed precision, ...).

- torch (the profile: layout copies, composite BN, separate bias adds):
  * convolutions get a zero-copy channels-last view (`permute`, no `.contiguous()`), so
    oneDNN runs its NHWC kernels; Keras 3.15 copies NHWC→NCHW, then to channels-last, per
    conv. `Conv2D`/`DepthwiseConv2D` pass their bias to the convolution (one pass less each
    way than a separate broadcast add and its gradient reduction).
  * `BatchNormalization` runs PyTorch's native batch norm (one kernel each way) instead of
    ~10 elementwise/reduction ops and their gradients; moving statistics as Keras computes
    them (biased batch variance, momentum as configured).
  * glibc keeps freed activation buffers (`mallopt`; opt out: SPATIALMIX_MALLOC_TUNING=0).
- tensorflow (the profile: composite BN and GELU ops were over half of the step):
  * `BatchNormalization` runs `FusedBatchNormV3` (one kernel each way);
  * exact GELU as 0.5·x·(1 + erf(x/√2)), forward and gradient each one small XLA-compiled
    kernel (TF runs the composite formula op by op: 41 → 5.5 ms per GELU, each way together);
  * one op at a time (inter-op threads 1, intra-op = cores): two concurrent 2-thread ops
    oversubscribe 2 cores.
- jax (XLA:CPU lowers a grouped convolution, `feature_group_count=C`, to a dense one with a
  masked kernel — about C times the work: ~20× slower forward, ~7× slower gradient at C=256):
  * `depthwise_conv` is a sum of k² shifted multiply-adds that XLA fuses into one loop, with
    a hand-written VJP: input gradient = the same shift-add of the dilated output gradient
    with the flipped kernel; kernel gradient = a loop over pairs of output rows adding the
    k² products into a cached accumulator (depth multiplier d > 1: forward and kernel
    gradient on the input repeated d times; the input gradient sums the d kernels with the
    gradient's d copies laid out first);
  * 1×1 convolutions are one 2-D matrix product (XLA's convolution path made their kernel
    gradient a 16×16-window convolution over transposed copies, ~5× slower);
  * exact GELU via erf instead of erfc (XLA:CPU evaluates erf faster).

Numerics: outputs, input and weight gradients and BN moving statistics equal the plain path's
to float32 rounding (tests/test_bench.py, every backend). The GELU formulas differ by < 1e-6
in absolute value (where 1 + erf(x) cancels, x < -4, GELU itself is < 1e-4).
"""

from __future__ import annotations

import contextlib
import os

RECOMMENDED_CPU_BACKEND = "torch"

_PATCHES: list = []  # (owner, attribute, original) of every swapped-in op, for removal
_STATE = {"backend": None, "runtime": None}


def fast_ops_wanted():
    """False if the user set SPATIALMIX_FAST_OPS=0 (train on Keras's own ops, e.g. to compare)."""
    return os.environ.get("SPATIALMIX_FAST_OPS", "1") != "0"


def default_backend():
    """The Keras backend of a run: `KERAS_BACKEND` if the user set it, else the CPU recommendation."""
    return os.environ.get("KERAS_BACKEND") or RECOMMENDED_CPU_BACKEND


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
    if backend == "torch":
        from keras.src.backend.torch import nn as knn

        _patch(knn, "conv", _make_torch_conv(knn.conv))
        _patch(keras.layers.Conv2D, "call", _make_torch_conv_call(keras.layers.Conv2D.call, depthwise=False))
        _patch(keras.layers.DepthwiseConv2D, "call",
               _make_torch_conv_call(keras.layers.DepthwiseConv2D.call, depthwise=True))
        _patch(keras.layers.BatchNormalization, "call", _make_bn_call(keras.layers.BatchNormalization.call, backend))
    elif backend == "tensorflow":
        from keras.src.backend.tensorflow import nn as knn

        _patch(keras.layers.BatchNormalization, "call", _make_bn_call(keras.layers.BatchNormalization.call, backend))
        _patch(knn, "gelu", _make_tf_gelu(knn.gelu))
    elif backend == "jax":
        from keras.src.backend.jax import nn as knn

        _patch(knn, "depthwise_conv", _make_jax_depthwise(knn.depthwise_conv))
        _patch(knn, "conv", _make_jax_pointwise(knn.conv))
        _patch(knn, "gelu", _make_jax_gelu(knn.gelu))


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


# --------------------------------------------------------------------------- torch: conv


def _make_torch_conv(original):
    import torch.nn.functional as F
    from keras.src import backend as kbackend
    from keras.src.backend.torch import nn as knn
    from keras.src.backend.torch.core import convert_to_tensor
    from keras.src.utils.argument_validation import standardize_tuple

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = kbackend.standardize_data_format(data_format)
        inputs = convert_to_tensor(inputs)
        kernel = convert_to_tensor(kernel)
        if inputs.ndim != 4 or data_format != "channels_last":
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = standardize_tuple(strides, 2, "strides")
        dilation = standardize_tuple(dilation_rate, 2, "dilation_rate")
        # A contiguous NHWC tensor permuted to NCHW *is* a channels-last tensor: no copy.
        x = inputs.permute(0, 3, 1, 2)
        w = kernel.permute(3, 2, 0, 1)  # (kh, kw, in/groups, out) -> (out, in/groups, kh, kw)
        if x.shape[1] % w.shape[1]:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        groups = x.shape[1] // w.shape[1]
        if padding == "same":
            x, pad = knn._apply_same_padding(x, w.shape[2:], strides, "channels_first", "conv", dilation)
        else:
            pad = 0
        out = F.conv2d(x, w, stride=strides, padding=pad, dilation=dilation, groups=groups)
        return out.permute(0, 2, 3, 1)

    return conv


def _make_torch_conv_call(original, depthwise):
    """Conv2D / DepthwiseConv2D with the bias inside the convolution (oneDNN adds it in the
    kernel, and its gradient comes out of the convolution's backward) instead of a separate
    broadcast add and its gradient reduction: one pass over the activations less, each way."""
    import torch.nn.functional as F
    from keras.src.backend.torch import nn as knn
    from keras.src.backend.torch.core import convert_to_tensor

    def call(self, inputs):
        if (self.rank != 2 or self.data_format != "channels_last" or len(inputs.shape) != 4
                or self.compute_dtype != "float32" or _dtype(inputs) != "float32"
                or self.padding not in ("same", "valid") or getattr(self, "lora_enabled", False)):
            return original(self, inputs)
        x = convert_to_tensor(inputs).permute(0, 3, 1, 2)  # channels-last view, no copy
        kernel = convert_to_tensor(self.kernel)
        if depthwise:  # (kh, kw, C, d) -> (C·d, 1, kh, kw), output channel c·d + m as Keras orders it
            kh, kw, c, d = kernel.shape
            w = kernel.reshape(kh, kw, 1, c * d).permute(3, 2, 0, 1)
            groups = c
        else:
            w = kernel.permute(3, 2, 0, 1)
            if x.shape[1] % w.shape[1]:
                return original(self, inputs)
            groups = x.shape[1] // w.shape[1]
        bias = convert_to_tensor(self.bias) if self.use_bias else None
        strides, dilation = tuple(self.strides), tuple(self.dilation_rate)
        if self.padding == "same":
            x, pad = knn._apply_same_padding(x, w.shape[2:], strides, "channels_first", "conv", dilation)
        else:
            pad = 0
        out = F.conv2d(x, w, bias, stride=strides, padding=pad, dilation=dilation, groups=groups).permute(0, 2, 3, 1)
        return self.activation(out) if self.activation is not None else out

    call.__wrapped__ = original
    return call


# --------------------------------------------------------------------------- BatchNormalization


def _make_tf_gelu(original):
    """Exact GELU, 0.5·x·(1 + erf(x/√2)), with forward and gradient each one XLA-fused kernel.

    TF runs the composite formula op by op (five passes forward, about ten for the gradient):
    41 ms forward + backward at 64×16×16×256, against 5.5 ms fused (measured); a ConvMixer-256/8
    step has 16 GELUs. Only these two small functions are compiled with XLA: the whole step
    under XLA is ~5× slower on CPU (its depthwise convolution)."""
    import tensorflow as tf

    half_sqrt2, inv_sqrt_2pi = 0.7071067811865476, 0.3989422804014327

    @tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
    def forward(x):
        return 0.5 * x * (1.0 + tf.math.erf(x * half_sqrt2))

    @tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
    def backward(x, dy):
        return dy * (0.5 * (1.0 + tf.math.erf(x * half_sqrt2)) + x * inv_sqrt_2pi * tf.exp(-0.5 * x * x))

    @tf.custom_gradient
    def fused(x):
        return forward(x), lambda dy: backward(x, dy)

    def gelu(x, approximate=True):
        x = tf.convert_to_tensor(x)
        if approximate or x.dtype != tf.float32:
            return original(x, approximate)
        return fused(x)

    return gelu


def _bn_fast_ok(layer, inputs, mask):
    return (mask is None and not layer.renorm and not layer.synchronized and layer.scale and layer.center
            and len(inputs.shape) == 4 and layer.axis in (3, -1)
            and _dtype(inputs) == "float32" and layer.compute_dtype == "float32"
            and layer.variable_dtype == "float32")


def _dtype(x):
    from keras import backend

    return backend.standardize_dtype(x.dtype)


def _make_bn_call(original, backend):
    impl = {"torch": _bn_torch, "tensorflow": _bn_tf}[backend]

    def call(self, inputs, training=None, mask=None):
        if not _bn_fast_ok(self, inputs, mask):
            return original(self, inputs, training=training, mask=mask)
        return impl(self, inputs, bool(training and self.trainable))

    call.__wrapped__ = original
    return call


def _bn_torch(layer, inputs, training):
    import torch
    import torch.nn.functional as F
    from keras.src.backend.torch.core import convert_to_tensor

    x = convert_to_tensor(inputs).permute(0, 3, 1, 2)  # channels-last view, no copy
    gamma, beta = convert_to_tensor(layer.gamma), convert_to_tensor(layer.beta)
    if training:
        out, mean, invstd = torch.native_batch_norm(x, gamma, beta, None, None, True, 0.0, layer.epsilon)
        with torch.no_grad():
            variance = invstd.pow(-2) - layer.epsilon  # the biased batch variance, as Keras uses
            m = layer.momentum
            layer.moving_mean.assign(convert_to_tensor(layer.moving_mean) * m + mean * (1.0 - m))
            layer.moving_variance.assign(convert_to_tensor(layer.moving_variance) * m + variance * (1.0 - m))
    else:
        out = F.batch_norm(x, convert_to_tensor(layer.moving_mean), convert_to_tensor(layer.moving_variance),
                           gamma, beta, training=False, eps=layer.epsilon)
    return out.permute(0, 2, 3, 1)


def _bn_tf(layer, inputs, training):
    import tensorflow as tf

    x = tf.convert_to_tensor(inputs)
    gamma, beta = tf.convert_to_tensor(layer.gamma), tf.convert_to_tensor(layer.beta)
    if training:
        empty = tf.constant([], tf.float32)
        out, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=layer.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # FusedBatchNormV3 returns the Bessel-corrected variance; Keras keeps the biased one.
        shape = tf.shape(x)
        n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        mean = tf.stop_gradient(mean)
        variance = tf.stop_gradient(variance) * ((n - 1.0) / tf.maximum(n, 1.0))
        m = layer.momentum
        layer.moving_mean.assign(tf.convert_to_tensor(layer.moving_mean) * m + mean * (1.0 - m))
        layer.moving_variance.assign(tf.convert_to_tensor(layer.moving_variance) * m + variance * (1.0 - m))
    else:
        out, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.convert_to_tensor(layer.moving_mean),
            variance=tf.convert_to_tensor(layer.moving_variance), epsilon=layer.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=False)
    return out


# --------------------------------------------------------------------------- jax: depthwise conv


def _same_pads(size, k, stride):
    """TF/Keras 'same' padding: (before, after) for one spatial dim."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _make_jax_gelu(original):
    """Exact GELU as 0.5·x·(1 + erf(x/√2)): XLA:CPU evaluates erf much faster than the erfc
    `jax.nn.gelu` uses (measured ~150-300 ms less per ConvMixer-256/8 step). Same function;
    the two formulas differ by < 1e-6 in absolute value (erf's rounding where 1 + erf(x)
    cancels, for x < -4, where GELU itself is < 1e-4)."""
    import jax
    import jax.numpy as jnp

    half_sqrt2 = 0.7071067811865476

    def gelu(x, approximate=True):
        x = jnp.asarray(x)
        if approximate or not jnp.issubdtype(x.dtype, jnp.floating):
            return original(x, approximate)
        return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.asarray(half_sqrt2, x.dtype)))

    return gelu


def _make_jax_pointwise(original):
    """1×1 convolutions as one matrix product: XLA:CPU runs the dot (and its two gradient
    dots) as GEMMs; as a convolution, its kernel gradient became a 16×16-window convolution
    over transposed copies, ~5× slower (measured)."""
    import jax.numpy as jnp
    from jax import lax
    from keras.src import backend as kbackend
    from keras.src.utils.argument_validation import standardize_tuple

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = kbackend.standardize_data_format(data_format)
        inputs = jnp.asarray(inputs)
        kernel = jnp.asarray(kernel)
        if (inputs.ndim != 4 or data_format != "channels_last" or kernel.shape[:2] != (1, 1)
                or kernel.shape[2] != inputs.shape[3] or padding not in ("same", "valid")):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        sh, sw = standardize_tuple(strides, 2, "strides")
        if (sh, sw) != (1, 1):  # a 1×1 kernel reads pixels 0, s, 2s, ... under both paddings
            inputs = inputs[:, ::sh, ::sw, :]
        # as a 2-D product: with the 4-D dot_general, the kernel gradient contracted three
        # axes and cost ~45 % more (measured 47 vs 32 ms, forward + both gradients, 64×16×16×256)
        n, h, w, c = inputs.shape
        return jnp.dot(inputs.reshape(n * h * w, c), kernel[0, 0]).reshape(n, h, w, kernel.shape[3])

    return conv


def _make_jax_depthwise(original):
    import functools

    import jax
    import jax.numpy as jnp
    from jax import lax
    from keras.src import backend as kbackend
    from keras.src.utils.argument_validation import standardize_tuple

    def tap(x, i, j, out_hw, strides):
        """x[:, i + s·h, j + s·w, :] for every output position (h, w): one shifted, strided view."""
        (ho, wo), (sh, sw) = out_hw, strides
        return lax.slice(x, (0, i, j, 0), (x.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, x.shape[3]),
                         (1, sh, sw, 1))

    def forward(xp, w, strides, out_hw):
        # materialise the (padded) input once: without the barrier XLA may fuse the op that
        # produced it into all k² taps and recompute it k² times (measured: GELU's erf/exp)
        xp = lax.optimization_barrier(xp)
        kh, kw = w.shape[:2]
        out = None
        for i in range(kh):
            for j in range(kw):
                term = tap(xp, i, j, out_hw, strides) * w[i, j, :, 0]
                out = term if out is None else out + term
        return out

    def repeated(xp, w):
        """Depth multiplier d > 1: output channel c·d + m is input channel c filtered by kernel
        m, i.e. a d = 1 depthwise conv of the input repeated d times along channels."""
        kh, kw, c, d = w.shape
        return (jnp.repeat(xp, d, axis=-1), w.reshape(kh, kw, c * d, 1)) if d > 1 else (xp, w)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
    def dw(x, w, strides, pads, out_hw):
        return dw_fwd(x, w, strides, pads, out_hw)[0]

    def dw_fwd(x, w, strides, pads, out_hw):
        xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        return forward(*repeated(xp, w), strides, out_hw), (xp, w)

    def dw_bwd(strides, pads, out_hw, residuals, g):
        xp, w = residuals
        kh, kw, c, d = w.shape
        n, hp, wp, _ = xp.shape
        (ho, wo), (sh, sw), ((top, bottom), (left, right)) = out_hw, strides, pads
        h, wi = hp - top - bottom, wp - left - right
        # input gradient, straight at the input's size: the output gradient, dilated by the
        # stride and padded (or cropped), correlated with the flipped kernel (the forward's
        # shift-and-add again)
        lh, lw = (ho - 1) * sh + 1, (wo - 1) * sw + 1
        gd = lax.pad(g, jnp.zeros((), g.dtype), [(0, 0, 0), (kh - 1 - top, h + top - lh, sh - 1),
                                                 (kw - 1 - left, wi + left - lw, sw - 1), (0, 0, 0)])
        flipped = w[::-1, ::-1]
        if d == 1:
            dx = forward(gd, flipped, (1, 1), (h, wi))
        else:
            # Σ over the d kernels of each input channel, with the d copies of the gradient
            # laid out first: summing groups of d adjacent channels after the taps fused into
            # a reduction ~5× slower (measured 400 vs 143 ms at 64×32×32×16, d=9)
            gd = lax.optimization_barrier(jnp.moveaxis(gd.reshape(*gd.shape[:3], c, d), 4, 0))
            dx = None
            for m in range(d):
                term = forward(gd[m], flipped[..., m:m + 1], (1, 1), (h, wi))
                dx = term if dx is None else dx + term
        xp_rep, _ = repeated(xp, w)
        return dx, kernel_grad(xp_rep, g, kh, kw, strides, out_hw).reshape(w.shape).astype(w.dtype)

    def kernel_grad(xp, g, kh, kw, strides, out_hw):
        """dW[i, j, c] = Σ_{n,h,w} xp[n, s·h + i, s·w + j, c] · g[n, h, w, c], as a loop over
        pairs of output rows that adds the k² products into a (k², W_out, C) accumulator.

        Elementwise multiply-adds only: the accumulator (~400 KB at W=16, C=256, k=5) and the
        rows stay in cache. Measured at 64×16×16×256, k=5: ~30-40 ms, against ~90 ms for a
        scan over images of k² reductions and ~1 s for XLA:CPU's grouped-conv filter gradient
        (the plain path). One output row per step is ~45 ms, four ~40 ms: two is the sweet spot."""
        n, hp, wp, c = xp.shape
        (ho, wo), (sh, sw) = out_hw, strides
        rows = 2 if ho % 2 == 0 else 1
        rows_in = sh * (rows - 1) + kh
        per_image = ho // rows

        def tap(x_rows, g_rows, i, j):
            out = None
            for r in range(rows):
                x_tap = lax.slice(x_rows, (i + r * sh, j, 0), (i + r * sh + 1, j + sw * (wo - 1) + 1, c),
                                  (1, sw, 1))[0]
                out = x_tap * g_rows[r] if out is None else out + x_tap * g_rows[r]
            return out

        def body(t, acc):
            image, h = t // per_image, (t % per_image) * rows
            x_rows = lax.dynamic_slice(xp, (image, h * sh, 0, 0), (1, rows_in, wp, c))[0].astype(jnp.float32)
            g_rows = lax.dynamic_slice(g, (image, h, 0, 0), (1, rows, wo, c))[0].astype(jnp.float32)
            # stacked per kernel row, then the rows: one flat 25-way stack fused ~5× slower
            return acc + jnp.stack([jnp.stack([tap(x_rows, g_rows, i, j) for j in range(kw)]) for i in range(kh)])

        acc = lax.fori_loop(0, n * per_image, body, jnp.zeros((kh, kw, wo, c), jnp.float32))
        return acc.sum(axis=2)[..., None]

    dw.defvjp(dw_fwd, dw_bwd)

    def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = kbackend.standardize_data_format(data_format)
        inputs = jnp.asarray(inputs)
        kernel = jnp.asarray(kernel)
        if (inputs.ndim != 4 or data_format != "channels_last" or kernel.shape[2] != inputs.shape[3]
                or padding not in ("same", "valid")
                or standardize_tuple(dilation_rate, 2, "dilation_rate") != (1, 1)):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = standardize_tuple(strides, 2, "strides")
        kh, kw = kernel.shape[:2]
        _, h, w, _ = inputs.shape
        if padding == "same":
            pads = (_same_pads(h, kh, strides[0]), _same_pads(w, kw, strides[1]))
        else:
            pads = ((0, 0), (0, 0))
        out_hw = ((h + sum(pads[0]) - kh) // strides[0] + 1, (w + sum(pads[1]) - kw) // strides[1] + 1)
        return dw(inputs, kernel, strides, pads, out_hw)

    return depthwise_conv
