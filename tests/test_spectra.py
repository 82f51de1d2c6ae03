"""recipes.core.spectra (envelopes) and recipes.core.unshuffle (permutation, PSNR)."""

import numpy as np
import pytest

from recipes.core import spectra, unshuffle
from zoo.filters import smooth, spatial_filters


def test_envelope_of_a_delta_filter_is_flat():
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    env = spectra.envelope(delta)
    assert env.shape == (512, 512)
    np.testing.assert_allclose(env, 1.0, atol=1e-12)
    assert spectra.coverage(env) == 1.0
    assert spectra.low_frequency_share(env) == pytest.approx(np.pi * 0.25**2, abs=0.005)  # the disc's area


def test_envelope_is_the_max_over_the_bank_with_zero_frequency_centred():
    box = np.full((3, 3), 1 / 9)
    env = spectra.envelope(box)
    assert env.argmax() == np.ravel_multi_index((256, 256), env.shape)  # DC in the centre
    assert env[256, 256] == pytest.approx(1.0)
    pair = np.stack([box, -box + np.eye(3)], axis=-1)
    np.testing.assert_allclose(spectra.envelope(pair),
                               np.maximum(spectra.envelope(pair[..., 0]), spectra.envelope(pair[..., 1])))
    kernel = spatial_filters("random", 5, 6, 2, seed=0)  # a depthwise kernel (k, k, C, d) is a bank of C·d
    assert spectra.bank(kernel).shape == (5, 5, 12)


def test_smoothing_lowers_the_high_frequency_share_and_more_filters_cover_more():
    raw = spatial_filters("random", 5, 64, seed=0)
    smoothed = smooth(raw, 1.0)
    assert spectra.high_frequency_share(spectra.envelope(smoothed)) < 0.7 * spectra.high_frequency_share(
        spectra.envelope(raw))
    one, many = spectra.summary(raw[:, :, :1]), spectra.summary(raw)
    assert many["coverage"] > one["coverage"]
    assert many["low_share"] + many["high_share"] == pytest.approx(1.0)


def test_permutation_is_a_bijection_fixed_by_its_seed():
    perm = unshuffle.permutation(8, 8, seed=3)
    assert sorted(perm) == list(range(64))
    np.testing.assert_array_equal(perm, unshuffle.permutation(8, 8, seed=3))
    assert not np.array_equal(perm, unshuffle.permutation(8, 8, seed=4))
    assert not np.array_equal(perm, np.arange(64))


def test_scramble_applies_the_same_permutation_to_every_image_and_inverts():
    rng = np.random.default_rng(0)
    x = rng.random((5, 4, 6, 3)).astype("float32")
    perm = unshuffle.permutation(4, 6, seed=1)
    s = unshuffle.scramble(x, perm)
    for n in range(5):  # pixel i of every scrambled image is pixel perm[i] of its original, all channels
        np.testing.assert_array_equal(s[n].reshape(24, 3), x[n].reshape(24, 3)[perm])
    np.testing.assert_array_equal(unshuffle.unscramble(s, perm), x)
    import tensorflow as tf

    np.testing.assert_array_equal(unshuffle.scramble(tf.constant(x), perm).numpy(), s)


def test_psnr_matches_a_hand_computation():
    target = np.zeros((2, 2, 2, 1))
    pred = target.copy()
    pred[0, 0, 0, 0] = 0.5        # image 0: MSE = 0.25 / 4 -> PSNR = 10 log10(16) = 12.0412 dB
    pred[1] = 0.1                 # image 1: MSE = 0.01 -> 20 dB
    assert unshuffle.psnr_per_image(pred, target) == pytest.approx([10 * np.log10(16), 20.0])
    assert unshuffle.psnr(pred, target) == pytest.approx((10 * np.log10(16) + 20.0) / 2)
    pred[1] = 1.7                 # predictions are clipped to [0, 1] first: MSE 1 -> 0 dB
    assert unshuffle.psnr_per_image(pred, target)[1] == pytest.approx(0.0)
