"""Speed settings of the training engine: same models, same checkpoints, faster steps on CPU.

The engine calls, once per process, before it builds a model (best: before `import keras`):

    from recipes import speed
    speed.configure_runtime()              # threads + the backend's fast ops (see below)
    model.compile(..., **speed.compile_kwargs())

and picks the backend of a CPU run with `speed.default_backend()` (`KERAS_BACKEND` if set,
else `RECOMMENDED_CPU_BACKEND`), which must be put in `os.environ["KERAS_BACKEND"]` before
keras is imported.

Nothing here changes a model or what a checkpoint holds: the zoo's models stay plain
built-in Keras layers (`DepthwiseConv2D`, `Conv2D`, `BatchNormalization`, ...) with
channels-last data format. What changes is how the backend computes three built-in ops in
this process, swapped in at runtime (`apply_fast_ops`) and swapped back by `plain_ops()` /
`remove_fast_ops()`:

- torch: `conv`/`depthwise_conv` hand PyTorch a zero-copy channels-last view
  (`permute`, no `.contiguous()`), so oneDNN runs its NHWC kernels with no layout copies
  (Keras 3.15 copies NHWC→NCHW and back to channels-last per conv, then permutes back);
  `BatchNormalization` runs PyTorch's native fused batch norm (one kernel forward, one
  backward) instead of ~10 elementwise/reduction ops and their gradients.
- tensorflow: `BatchNormalization` runs `FusedBatchNormV3` (one kernel each way) instead of
  Keras 3's composite moments/normalise ops and their gradients.
- jax: `depthwise_conv` is a sum of k² shifted multiply-adds (XLA fuses it into one loop)
  with a hand-written VJP (input gradient: the same shift-add with the flipped kernel;
  kernel gradient: a scan over the batch). XLA:CPU lowers a grouped convolution
  (`feature_group_count=C`) to a dense one with a masked kernel, about C times the work:
  measured ~20× slower forward and ~7× slower gradient at C=256.

Every fast op falls back to the original for anything it does not cover (other data
formats, dilation, masks, renorm, mixed precision...). Numerics: outputs and gradients equal
the plain path's to float32 rounding (tests/test_bench.py checks outputs, input and weight
gradients and BN moving statistics on every backend).

Thread settings: PyTorch, TensorFlow and XLA use one intra-op thread per core by default,
which is what measured fastest here; `configure_runtime` makes TensorFlow run one op at a
time (inter-op 1): with 2 cores, two concurrent ops of 2 threads each oversubscribe them.
"""

from __future__ import annotations

import contextlib
import os

RECOMMENDED_CPU_BACKEND = "torch"

_PATCHES: list = []  # (owner, attribute, original) of every swapped-in op, for removal
_STATE = {"backend": None, "runtime": None}


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
    """Thread settings and the backend's fast ops, once per process. Returns what was set.

    Call before the first model is built; environment variables only take effect if the
    backend's library has not been imported yet, so the best place is before `import keras`.
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
    if backend == "torch" and os.environ.get("SPATIALMIX_MALLOC", "1") == "1":
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

    JAX always compiles with XLA; TensorFlow stays on its native kernels (XLA would lower the
    depthwise conv to the slow grouped convolution); PyTorch stays eager (`torch.compile`
    needs a C++ toolchain and minutes of compilation, for no measured gain here).
    """
    backend = _current_backend(backend)
    if backend == "tensorflow":
        return {"jit_compile": False}
    if backend == "torch":
        return {"jit_compile": False}
    return {}


# --------------------------------------------------------------------------- patching


def _patch(owner, name, value):
    _PATCHES.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


def apply_fast_ops(backend=None):
    """Swap in the fast ops of `backend` (default: keras's). Returns their names."""
    backend = _current_backend(backend)
    if _STATE["backend"] == backend:
        return [name for _, name, _ in _PATCHES]
    remove_fast_ops()
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(f"keras runs on {keras.backend.backend()!r}, not {backend!r}")
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
    _STATE["backend"] = backend
    return [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name, _ in _PATCHES]


def remove_fast_ops():
    """Put the original ops back."""
    while _PATCHES:
        owner, name, original = _PATCHES.pop()
        setattr(owner, name, original)
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
    """Exact GELU as 0.5·x·(1 + erf(x/√2)) instead of tf.nn.gelu's erfc form: forward and
    backward ~30 % faster on TF's CPU kernels (measured 16 vs 23 ms at 64×16×16×256)."""
    import tensorflow as tf

    def gelu(x, approximate=True):
        x = tf.convert_to_tensor(x)
        if approximate or not x.dtype.is_floating:
            return original(x, approximate)
        return 0.5 * x * (1.0 + tf.math.erf(x * tf.constant(0.7071067811865476, x.dtype)))

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
        return lax.dot_general(inputs, kernel[0, 0], (((3,), (0,)), ((), ())))

    return conv


def _make_jax_depthwise(original):
    import functools

    import jax
    import jax.numpy as jnp
    from jax import lax
    from keras.src import backend as kbackend
    from keras.src.utils.argument_validation import standardize_tuple

    def taps(xp, shape_out, strides, i, j):
        n, ho, wo = shape_out
        sh, sw = strides
        return lax.slice(xp, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, xp.shape[3]),
                         (1, sh, sw, 1))

    def forward(xp, w, strides, out_hw):
        kh, kw, c, d = w.shape
        shape_out = (xp.shape[0], *out_hw)
        out = None
        for i in range(kh):
            for j in range(kw):
                patch = taps(xp, shape_out, strides, i, j)
                term = patch * w[i, j, :, 0] if d == 1 else patch[..., None] * w[i, j]
                out = term if out is None else out + term
        return out.reshape(*shape_out, c * d)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
    def dw(xp, w, strides, out_hw):
        return forward(xp, w, strides, out_hw)

    def dw_fwd(xp, w, strides, out_hw):
        return forward(xp, w, strides, out_hw), (xp, w)

    def dw_bwd(strides, out_hw, residuals, g):
        xp, w = residuals
        kh, kw, c, d = w.shape
        n, hp, wp, _ = xp.shape
        ho, wo = out_hw
        sh, sw = strides
        g = g.reshape(n, ho, wo, c, d)
        # input gradient: correlate the (stride-dilated, padded) output gradient with the flipped kernel
        lh, lw = (ho - 1) * sh + 1, (wo - 1) * sw + 1
        config = [(0, 0, 0), (kh - 1, hp - lh, sh - 1), (kw - 1, wp - lw, sw - 1), (0, 0, 0)]
        if d == 1:
            gd = lax.pad(g[..., 0], jnp.zeros((), g.dtype), config)
        else:
            gd = lax.pad(g, jnp.zeros((), g.dtype), config + [(0, 0, 0)])
        dxp = None
        for i in range(kh):
            for j in range(kw):
                weight = w[kh - 1 - i, kw - 1 - j]
                if d == 1:
                    term = lax.slice(gd, (0, i, j, 0), (n, i + hp, j + wp, c)) * weight[:, 0]
                else:
                    term = jnp.sum(lax.slice(gd, (0, i, j, 0, 0), (n, i + hp, j + wp, c, d)) * weight, axis=-1)
                dxp = term if dxp is None else dxp + term

        # kernel gradient, one image at a time so its slices stay in cache: per tap, the sum
        # over rows of (shifted input × output gradient), kept per column (W, C) and summed
        # over columns at the end (reducing over the outermost axis vectorises best on XLA:CPU)
        def taps_of(x1, g1):
            return [lax.slice(x1, (i, j, 0), (i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c), (sh, sw, 1))
                    for i in range(kh) for j in range(kw)]

        if d == 1:
            def body(acc, xs):
                x1, g1 = xs  # (hp, wp, c), (ho, wo, c)
                return acc + jnp.stack([jnp.sum(t * g1, axis=0) for t in taps_of(x1, g1)]), None

            acc, _ = lax.scan(body, jnp.zeros((kh * kw, wo, c), jnp.float32), (xp, g[..., 0]), unroll=2)
            dw_ = acc.sum(axis=1).reshape(kh, kw, c, 1)
        else:
            def body(acc, xs):
                x1, g1 = xs  # (hp, wp, c), (ho, wo, c, d)
                rows = [jnp.einsum("hwc,hwcd->cd", t, g1) for t in taps_of(x1, g1)]
                return acc + jnp.stack(rows).reshape(kh, kw, c, d), None

            dw_, _ = lax.scan(body, jnp.zeros(w.shape, jnp.float32), (xp, g))
        return dxp, dw_.astype(w.dtype)

    dw.defvjp(dw_fwd, dw_bwd)

    def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = kbackend.standardize_data_format(data_format)
        inputs = jnp.asarray(inputs)
        kernel = jnp.asarray(kernel)
        dilation = standardize_tuple(dilation_rate, 2, "dilation_rate") if inputs.ndim == 4 else None
        if (inputs.ndim != 4 or data_format != "channels_last" or dilation != (1, 1)
                or kernel.shape[2] != inputs.shape[3] or padding not in ("same", "valid")):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = standardize_tuple(strides, 2, "strides")
        kh, kw, c, d = kernel.shape
        if d > 1:  # channel c·d + m = input channel c filtered by kernel m: repeat the input d times
            inputs = jnp.repeat(inputs, d, axis=-1)
            kernel = kernel.reshape(kh, kw, c * d, 1)
        _, h, w, _ = inputs.shape
        if padding == "same":
            ph, pw = _same_pads(h, kh, strides[0]), _same_pads(w, kw, strides[1])
            xp = jnp.pad(inputs, ((0, 0), ph, pw, (0, 0)))
        else:
            xp = inputs
        hp, wp = xp.shape[1], xp.shape[2]
        out_hw = ((hp - kh) // strides[0] + 1, (wp - kw) // strides[1] + 1)
        return dw(xp, kernel, strides, out_hw)

    return depthwise_conv
