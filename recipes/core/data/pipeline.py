"""From a data set's name to batches: `load_dataset` (a batched, prefetched `tf.data.Dataset`
on every Keras backend), `num_examples`, and `dataset_spec` (what a set delivers with given
options). Shuffling and augmentation run in tf.data, seeded by the caller's `seed`; when
Keras does not run on TensorFlow, TensorFlow is kept off the GPUs.
"""

from __future__ import annotations

import numbers
import os
import sys
from dataclasses import replace

import numpy as np

from recipes.core.data.catalogue import OPTIONS, DatasetSpec, check_name, check_split, resolve_options
from recipes.core.data.embedded import arrays
from recipes.core.data.tfds import count_examples, load_examples, load_imagenet
from zoo.errors import check, check_positive_int

_FLIP = {"cifar10", "cifar100", "imagenet_resized/32x32", "imagenet2012", "patches"}


def dataset_spec(name: str, **options) -> DatasetSpec:
    """The spec of `name` as delivered with these options (image_shape, mean/std follow them)."""
    spec = check_name(name)
    opts = resolve_options(name, options)
    if opts == OPTIONS.get(name, {}):
        return spec
    if name == "imagenet2012":
        size = opts["image_size"]
        return replace(spec, image_shape=(size, size, 3))
    if name == "textures":
        p = opts["patch_size"]
        if opts["standardize"]:
            return replace(spec, image_shape=(p, p, 1))
        x, _ = arrays(name, "train", tuple(sorted(opts.items())))
        mean, std = _channel_stats(x)
        return replace(spec, image_shape=(p, p, 1), mean=mean, std=std,
                       description="14-class gray patches of scikit-image's photos, unstandardised, in [0, 1]")
    # patches with other sizes/counts: the statistics come from its train split
    x, _ = arrays(name, "train", tuple(sorted(opts.items())))
    mean, std = _channel_stats(x)
    return replace(spec, image_shape=tuple(x.shape[1:]), mean=mean, std=std)


def _channel_stats(x):
    x = np.asarray(x, dtype=np.float64)
    return (tuple(float(v) for v in x.mean(axis=(0, 1, 2))), tuple(float(v) for v in x.std(axis=(0, 1, 2))))


_TF_CONFIGURED = False


def _keras_backend():
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return keras.backend.backend()
        except Exception:  # a partially imported keras
            pass
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _tf():
    """Import TensorFlow; on the first call, hide the GPUs from it unless Keras runs on TF."""
    global _TF_CONFIGURED
    import tensorflow as tf

    if not _TF_CONFIGURED:
        _TF_CONFIGURED = True
        if _keras_backend() != "tensorflow":
            try:
                tf.config.set_visible_devices([], "GPU")
            except (RuntimeError, ValueError):  # devices already initialised
                pass
    return tf


def _augment_batch(tf, images, seed, pad, flip):
    """Per-example random translation (zero-pad `pad`, crop back) and optional flip, batched."""
    height, width = images.shape[1], images.shape[2]
    seed_shift, seed_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(images)[0]
    shift = tf.random.stateless_uniform([batch, 2], seed=seed_shift, minval=0, maxval=2 * pad + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = shift[:, :1] + tf.range(height)[None, :]
    cols = shift[:, 1:] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    if flip:
        flip_mask = tf.random.stateless_uniform([batch], seed=seed_flip) < 0.5
        out = tf.where(flip_mask[:, None, None, None], tf.reverse(out, axis=[2]), out)
    return out


def _finish(tf, ds, name, spec, *, batch_size, augment, seed, repeat, drop_remainder, labelled, to_float):
    """Repeat, batch, convert to float [0, 1], augment per batch (seeded), prefetch."""
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    height = spec.image_shape[0]
    pad = max(1, height // 8)
    flip = name in _FLIP

    def convert(index, element):
        images, labels = element if labelled else (element, None)
        if to_float:
            images = tf.cast(images, tf.float32) / 255.0
        if augment:
            images = _augment_batch(tf, images, tf.stack([tf.constant(seed, tf.int64), index]), pad, flip)
        images = tf.ensure_shape(images, (None, *spec.image_shape))
        if labelled:
            return images, tf.cast(labels, tf.int32)
        return images

    if augment or to_float:
        ds = ds.enumerate().map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _check_common(batch_size, seed):
    check_positive_int("batch_size", batch_size)
    check(isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed < 2**63,
          f"seed must be a non-negative integer, got {seed!r}")


def load_dataset(name: str, split: str, *, batch_size: int = 128, shuffle: bool | None = None,
                 augment: bool = False, seed: int = 0, data_dir: str | None = None, repeat: bool = False,
                 drop_remainder: bool = False, **options):
    """A batched, prefetched `tf.data.Dataset` of `name`/`split`.

    Yields (images float32 NHWC, labels int32) for classification sets, images only for
    label-free ones. `shuffle` defaults to `split == "train"`; shuffling and augmentation are
    seeded by `seed` (fresh order and augmentation every epoch, same sequence for the same
    seed). `data_dir` is where TFDS sets are looked for (None: TFDS's default); embedded sets
    ignore it. Options: see `dataset_options(name)`.
    """
    spec = check_name(name)
    check_split(name, split)
    opts = resolve_options(name, options)
    _check_common(batch_size, seed)
    shuffle = (split == "train") if shuffle is None else bool(shuffle)
    spec = dataset_spec(name, **opts)
    tf = _tf()
    kwargs = dict(batch_size=batch_size, augment=bool(augment), seed=int(seed), repeat=repeat,
                  drop_remainder=drop_remainder)
    if spec.source == "embedded":
        x, y = arrays(name, split, tuple(sorted(opts.items())))
        labelled = y is not None
        ds = tf.data.Dataset.from_tensor_slices((x, y) if labelled else x)
        if shuffle:
            ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
        return _finish(tf, ds, name, spec, labelled=labelled, to_float=False, **kwargs)
    if name == "imagenet2012":
        return load_imagenet(tf, split, opts, shuffle=shuffle, data_dir=data_dir, **kwargs)
    ds = load_examples(name, split, shuffle=shuffle, data_dir=data_dir, seed=kwargs["seed"])
    return _finish(tf, ds, name, spec, labelled=True, to_float=True, **kwargs)


def num_examples(name: str, split: str, data_dir: str | None = None, **options) -> int:
    """Number of examples in `name`/`split` (for TFDS sets, read from the prepared metadata)."""
    spec = check_name(name)
    check_split(name, split)
    opts = resolve_options(name, options)
    if spec.source == "embedded":
        x, _ = arrays(name, split, tuple(sorted(opts.items())))
        return int(len(x))
    _tf()
    return count_examples(name, split, data_dir)
