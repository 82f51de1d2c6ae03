"""Fast ops for the jax backend. XLA:CPU lowers a grouped convolution (`feature_group_count=C`)
to a dense one with a masked kernel: about C times the work, ~20x slower forward and ~7x
slower gradient at C=256.

- `depthwise_conv` is a sum of k² shifted multiply-adds that XLA fuses into one loop, with a
  hand-written VJP: input gradient = the same shift-add of the dilated output gradient with
  the flipped kernel; kernel gradient = a loop over pairs of output rows adding the k²
  products into a cached accumulator (depth multiplier d > 1: forward and kernel gradient on
  the input repeated d times; the input gradient sums the d kernels with the gradient's d
  copies laid out first).
- 1×1 convolutions are one 2-D matrix product.
- Exact GELU via erf instead of erfc (XLA:CPU evaluates erf faster).

`recipes.core.runtime` is the front that applies these.
"""


def apply(patch, keras):
    from keras.src.backend.jax import nn as knn

    patch(knn, "depthwise_conv", _make_jax_depthwise(knn.depthwise_conv))
    patch(knn, "conv", _make_jax_pointwise(knn.conv))
    patch(knn, "gelu", _make_jax_gelu(knn.gelu))


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
