"""Initial values of the spatial (depthwise) filters: the object of study.

Every kind is generated with NumPy from an explicit seed, so the same seed gives
the same filters on TensorFlow, JAX and PyTorch alike.

Kinds (paper A §4.1.3, §4.3.3):
- `random`   ("Different"): independent U(-1/k, 1/k) filters. This is PyTorch's
  default init for a depthwise conv (kaiming_uniform with a=sqrt(5) and
  fan_in = k*k per channel), the scale the ConvMixer reference and paper A
  used. Keras's own default (glorot over fan_in = k*k*C) is several times
  smaller, so it is never relied on.
- `same`:     one set of d random k×k kernels, repeated for every input channel.
- `box`:      every tap 1/k².
- `identity`: a delta at the tap that maps a pixel onto itself under "same" padding.
- `smoothed`: `random` filters low-pass filtered by a Gaussian of std `smoothing`
  pixels, then rescaled to their original L2 norm so that only the spectrum
  changes, not the signal scale.
"""

import numpy as np

from zoo.errors import check, check_choice

FILTER_KINDS = ("random", "same", "box", "identity", "smoothed")


def spatial_filters(kind, kernel_size, channels, depth_multiplier=1, seed=0, smoothing=1.0):
    """Return a depthwise kernel of shape (k, k, channels, depth_multiplier), float32."""
    check_choice("filter kind", kind, FILTER_KINDS)
    check(smoothing > 0, f"smoothing must be > 0 (a Gaussian std in pixels), got {smoothing!r}")
    k, c, d = kernel_size, channels, depth_multiplier
    rng = np.random.default_rng(seed)
    bound = 1.0 / k
    if kind == "random":
        w = rng.uniform(-bound, bound, (k, k, c, d))
    elif kind == "same":
        w = np.broadcast_to(rng.uniform(-bound, bound, (k, k, 1, d)), (k, k, c, d))
    elif kind == "box":
        w = np.full((k, k, c, d), 1.0 / k**2)
    elif kind == "identity":
        w = np.zeros((k, k, c, d))
        centre = (k - 1) // 2  # "same" padding puts (k-1)//2 taps before the centre
        w[centre, centre] = 1.0
    else:
        w = smooth(rng.uniform(-bound, bound, (k, k, c, d)), smoothing)
    return np.ascontiguousarray(w, dtype="float32")


def smooth(filters, sigma):
    """Gaussian low-pass of each k×k filter (axes 0, 1), keeping each filter's L2 norm."""
    from scipy.ndimage import gaussian_filter

    smoothed = gaussian_filter(filters, sigma=(sigma, sigma, 0, 0), mode="constant")
    norm = np.sqrt((filters**2).sum(axis=(0, 1), keepdims=True))
    snorm = np.sqrt((smoothed**2).sum(axis=(0, 1), keepdims=True))
    return smoothed * norm / np.maximum(snorm, 1e-12)
