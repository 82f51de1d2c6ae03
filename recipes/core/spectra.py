"""Spectral envelopes of filter banks (paper A §3.1, Figs. 1, 8, 9). NumPy only.

    from recipes.core import spectra
    env = spectra.envelope(kernel)             # kernel (k, k, ...) -> (512, 512), zero frequency centred
    spectra.coverage(env)                      # fraction of frequencies within 6 dB of the envelope's peak
    spectra.low_frequency_share(env)           # share of envelope energy below the cut-off radius

The envelope (paper A, footnote 1): the magnitude of the 2-D FFT of each filter,
zero-padded to 512×512, the zero frequency shifted to the centre, then the maximum over
the bank. Frequencies are in cycles per pixel, so the plane spans [-0.5, 0.5)² whatever
the padding; the radius of a frequency is its Euclidean norm.

The two numbers for tables, chosen once and used by every recipe:
- `coverage(env, level=0.5)`: the fraction of the frequency plane where the envelope is at
  least `level` times its own maximum (half amplitude, −6 dB). A flat envelope (a delta
  filter) covers 1.0; a bank that misses frequencies covers less. Relative to the bank's
  own peak, so it does not depend on the filters' scale.
- `low_frequency_share(env, cutoff=0.25)`: Σ env² over radius < cutoff divided by Σ env²
  over the plane. 0.25 cycles/pixel is half the Nyquist radius. A flat envelope gives the
  disc's area fraction, π·0.25² ≈ 0.196; a low-pass bank gives more.
  `high_frequency_share` is 1 minus it.
"""

import numpy as np

SIZE = 512
LEVEL = 0.5
CUTOFF = 0.25


def bank(kernel):
    """A depthwise kernel (k, k, C, d), or (k, k, n), or one (k, k) filter -> (k, k, n) filters."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim == 2:
        kernel = kernel[..., None]
    return kernel.reshape(kernel.shape[0], kernel.shape[1], -1)


def envelope(kernel, size=SIZE):
    """max over the bank of |FFT2| of each filter zero-padded to size×size, zero frequency centred."""
    filters = bank(kernel)
    out = np.zeros((size, size))
    for start in range(0, filters.shape[2], 16):  # 16 filters at a time: bounded memory
        chunk = np.abs(np.fft.fft2(filters[:, :, start:start + 16], s=(size, size), axes=(0, 1)))
        np.maximum(out, chunk.max(axis=2), out=out)
    return np.fft.fftshift(out)


def radius(size=SIZE):
    """Radius (cycles/pixel) of every frequency of a centred size×size spectrum."""
    f = np.fft.fftshift(np.fft.fftfreq(size))
    return np.hypot(f[:, None], f[None, :])


def coverage(env, level=LEVEL):
    env = np.asarray(env)
    return float(np.mean(env >= level * env.max())) if env.max() > 0 else 0.0


def low_frequency_share(env, cutoff=CUTOFF):
    energy = np.asarray(env, dtype=np.float64) ** 2
    total = energy.sum()
    return float(energy[radius(energy.shape[0]) < cutoff].sum() / total) if total > 0 else 0.0


def high_frequency_share(env, cutoff=CUTOFF):
    return 1.0 - low_frequency_share(env, cutoff)


def summary(kernel, size=SIZE):
    """{coverage, low_share, high_share} of a bank's envelope."""
    env = envelope(kernel, size)
    low = low_frequency_share(env)
    return {"coverage": coverage(env), "low_share": low, "high_share": 1.0 - low}


def show(ax, env, title=None):
    """Draw an envelope on a matplotlib axis: linear magnitude scaled to its own peak."""
    env = np.asarray(env)
    ax.imshow(env / max(env.max(), 1e-12), cmap="magma", vmin=0, vmax=1, extent=(-0.5, 0.5, -0.5, 0.5))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
