"""Data sets for the recipes: the embedded ones (no network) and the TFDS ones (paper scale).

    from recipes.core import data
    data.dataset_names()                       # ['digits', 'digits32', 'patches', 'textures', 'cifar10', ...]
    spec = data.dataset_spec("textures", patch_size=24)
    x, y = data.load_arrays("digits", "train")  # embedded sets only: float32 NHWC, int32 labels
    ds = data.load_dataset("cifar10", "train", batch_size=128, augment=True, data_dir="/data/tfds")

Conventions:
- Images are float32 NHWC in [0, 1]; models normalise inside with `spec.mean` / `spec.std`.
  The one exception is `textures`: every patch is standardised to zero mean and unit
  variance, so its values are NOT in [0, 1] (its spec says mean 0, std 1).
- Everything goes through `tf.data`; shuffling and augmentation are seeded by `seed`, so two
  loads with the same arguments yield the same batches. Train/test splits and patch
  sampling never depend on `seed`: they use fixed internal seeds.
- Wrong names, splits, options or a TFDS set that is not prepared raise
  `zoo.errors.SpatialmixError` with a one-line message that says how to fix it.

Embedded sets:
- `digits`   scikit-learn's 1797 handwritten digits, 8×8×1, values /16; fixed stratified
             80/20 split (1437 train / 360 test).
- `digits32` the same split, bilinearly resized to 32×32×1 (values stay in [0, 1]).
- `patches`  label-free 32×32×3 crops of scikit-learn's two sample photos, /255. Train crops
             lie in the left half of each photo, test crops in the right half.
             Options: `patch_size` (32), `train_count` (2000), `test_count` (500).
- `textures` 14-class grayscale patches of scikit-image's bundled photos (one class per photo,
             order as in `TEXTURE_SOURCES`). Train patches lie in the left half of each photo,
             test patches in the right half. Each patch is standardised; flat patches (pixel
             std < 1e-3 in [0, 1] units, e.g. retina's black border, which cannot be
             standardised) are rejected and redrawn. Options: `patch_size` (16),
             `train_per_class` (300), `test_per_class` (100), `standardize` (1). With
             `standardize=0` the same patches come unstandardised, as gray values in [0, 1]
             (mean/std in the spec then come from that train split): the [0, 1] variant that
             attacks with ε in pixel units need.
  `patch_origins(name, split)` gives each patch's (source, row, col) corner.

Augmentation (`augment=True`): random translation by zero-padding `H // 8` pixels per side and
cropping back (4 for 32×32, 3 for 28×28, 2 for 16×16, 1 for 8×8), plus a horizontal flip
for natural photos (cifar10, cifar100, imagenet_resized/32x32, patches) but not for digits,
mnist, fashion_mnist or textures. imagenet2012: random-resized-crop (scale 0.08–1, ratio
3/4–4/3) + flip; without augmentation, resize the shorter side to 256/224·size and
centre-crop. Option `image_size` (224).
"""

from __future__ import annotations

import functools
import numbers
import os
import sys
from dataclasses import dataclass, replace

import numpy as np

from zoo.errors import SpatialmixError, check, check_positive_int


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set delivers with its default options (see `dataset_spec` for others)."""

    name: str
    source: str  # "embedded" | "tfds"
    task: str  # "classification" | "images" (label-free)
    num_classes: int  # 0 for label-free
    image_shape: tuple  # (H, W, C) as delivered by load_dataset
    mean: tuple  # per channel, in delivered pixel units
    std: tuple
    splits: tuple
    description: str


_SPLITS = ("train", "test")
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

TEXTURE_SOURCES = (
    "brick", "grass", "gravel", "camera", "coins", "moon", "page", "text",
    "hubble_deep_field", "retina", "coffee", "chelsea", "astronaut", "rocket",
)  # all 14 load offline from skimage.data (files shipped inside scikit-image, no pooch)

# Largest patch that fits every source: min over sources of min(height, width // 2);
# the limit is `text` (172×448). tests/test_data.py recomputes it from the photos.
_TEXTURES_MAX_PATCH = 172
# scikit-learn's two sample photos are 427×640: min(427, 640 // 2).
_PATCHES_MAX_PATCH = 320
_MIN_PATCH_STD = 1e-3  # textures: patches flatter than this are redrawn

# Fixed internal seeds: splits and patch positions never depend on the user's seed.
_DIGITS_SPLIT_SEED = 0
_PATCH_SEED = 20_240_601

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        # mean/std of the embedded sets: computed from their train split with default options
        # (tests/test_data.py checks these numbers against the arrays).
        DatasetSpec("digits", "embedded", "classification", 10, (8, 8, 1), (0.305383,), (0.376119,),
                    _SPLITS, "scikit-learn handwritten digits, 8x8 gray, fixed stratified 80/20 split"),
        DatasetSpec("digits32", "embedded", "classification", 10, (32, 32, 1), (0.305383,), (0.323652,),
                    _SPLITS, "digits resized bilinearly to 32x32 (same split)"),
        DatasetSpec("patches", "embedded", "images", 0, (32, 32, 3), (0.355385, 0.371150, 0.322099),
                    (0.335023, 0.258178, 0.276241),
                    _SPLITS, "label-free 32x32 colour crops of scikit-learn's sample photos (train: left halves, test: right halves)"),
        DatasetSpec("textures", "embedded", "classification", len(TEXTURE_SOURCES), (16, 16, 1), (0.0,), (1.0,),
                    _SPLITS, "14-class standardised gray patches of scikit-image's photos (train: left halves, test: right halves); not in [0, 1]"),
        DatasetSpec("cifar10", "tfds", "classification", 10, (32, 32, 3), (0.4914, 0.4822, 0.4465),
                    (0.2471, 0.2435, 0.2616), _SPLITS, "CIFAR-10 via TFDS"),
        DatasetSpec("cifar100", "tfds", "classification", 100, (32, 32, 3), (0.5071, 0.4865, 0.4409),
                    (0.2673, 0.2564, 0.2762), _SPLITS, "CIFAR-100 via TFDS"),
        DatasetSpec("mnist", "tfds", "classification", 10, (28, 28, 1), (0.1307,), (0.3081,),
                    _SPLITS, "MNIST via TFDS"),
        DatasetSpec("fashion_mnist", "tfds", "classification", 10, (28, 28, 1), (0.2860,), (0.3530,),
                    _SPLITS, "Fashion-MNIST via TFDS"),
        DatasetSpec("imagenet2012", "tfds", "classification", 1000, (224, 224, 3), _IMAGENET_MEAN, _IMAGENET_STD,
                    _SPLITS, "ImageNet ILSVRC-2012 via TFDS (manual download); test = validation split"),
        DatasetSpec("imagenet_resized/32x32", "tfds", "classification", 1000, (32, 32, 3), _IMAGENET_MEAN,
                    _IMAGENET_STD, _SPLITS, "Small-ImageNet 32x32 via TFDS; test = validation split"),
    ]
}

# Options each data set takes, with their defaults. Passing None means "the default".
_OPTIONS: dict[str, dict[str, int]] = {
    "patches": {"patch_size": 32, "train_count": 2000, "test_count": 500},
    "textures": {"patch_size": 16, "train_per_class": 300, "test_per_class": 100, "standardize": 1},
    "imagenet2012": {"image_size": 224},
}
_OPTION_RANGES = {  # (minimum, maximum or None)
    ("patches", "patch_size"): (2, _PATCHES_MAX_PATCH),
    ("textures", "patch_size"): (2, _TEXTURES_MAX_PATCH),
    ("textures", "standardize"): (0, 1),
    ("imagenet2012", "image_size"): (16, 1024),
}

_TFDS_SPLITS = {"imagenet2012": {"test": "validation"}, "imagenet_resized/32x32": {"test": "validation"}}
_FLIP = {"cifar10", "cifar100", "imagenet_resized/32x32", "imagenet2012", "patches"}
_CACHE_IN_MEMORY = {"cifar10", "cifar100", "mnist", "fashion_mnist"}  # small enough to cache decoded


# --------------------------------------------------------------------------- names, options


def dataset_names() -> list[str]:
    """All data set names: the embedded ones first, then the TFDS ones."""
    return list(DATASETS)


def dataset_options(name: str) -> dict:
    """The options `name` takes, with their default values (empty if none)."""
    _check_name(name)
    return dict(_OPTIONS.get(name, {}))


def _check_name(name):
    if name not in DATASETS:
        raise SpatialmixError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def _check_split(name, split):
    spec = _check_name(name)
    if split not in spec.splits:
        raise SpatialmixError(f"unknown split {split!r} for dataset {name!r}; choose one of: {', '.join(spec.splits)}")


def _resolve_options(name, options) -> dict:
    """Fill in defaults and validate; returns the full option dict for `name`."""
    _check_name(name)
    defaults = _OPTIONS.get(name, {})
    for key in options:
        if key not in defaults:
            takes = f"it takes: {', '.join(defaults)}" if defaults else "it takes no options"
            raise SpatialmixError(f"unknown option {key!r} for dataset {name!r}; {takes}")
    resolved = dict(defaults)
    for key, value in options.items():
        if value is None:
            continue
        lo, hi = _OPTION_RANGES.get((name, key), (1, None))
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= lo
        ok = ok and (hi is None or value <= hi)
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        check(ok, f"option {key} of dataset {name!r} must be an integer {bound}, got {value!r}")
        resolved[key] = int(value)
    return resolved


def dataset_spec(name: str, **options) -> DatasetSpec:
    """The spec of `name` as delivered with these options (image_shape, mean/std follow them)."""
    spec = _check_name(name)
    opts = _resolve_options(name, options)
    if opts == _OPTIONS.get(name, {}):
        return spec
    if name == "imagenet2012":
        size = opts["image_size"]
        return replace(spec, image_shape=(size, size, 3))
    if name == "textures":
        p = opts["patch_size"]
        if opts["standardize"]:
            return replace(spec, image_shape=(p, p, 1))
        x, _ = _embedded_arrays(name, "train", tuple(sorted(opts.items())))
        mean, std = _channel_stats(x)
        return replace(spec, image_shape=(p, p, 1), mean=mean, std=std,
                       description="14-class gray patches of scikit-image's photos, unstandardised, in [0, 1]")
    # patches with other sizes/counts: the statistics come from its train split
    x, _ = _embedded_arrays(name, "train", tuple(sorted(opts.items())))
    mean, std = _channel_stats(x)
    return replace(spec, image_shape=tuple(x.shape[1:]), mean=mean, std=std)


def _channel_stats(x):
    x = np.asarray(x, dtype=np.float64)
    return (tuple(float(v) for v in x.mean(axis=(0, 1, 2))), tuple(float(v) for v in x.std(axis=(0, 1, 2))))


# --------------------------------------------------------------------------- embedded data


def load_arrays(name: str, split: str, *, seed: int = 0, **options):
    """(images, labels) of an embedded data set: float32 NHWC, int32 labels (None if label-free).

    The arrays are cached in-process and returned read-only (copy them to modify). They come in
    a fixed order; `seed` is accepted for symmetry with `load_dataset` and has no effect (the
    split and the patch positions use fixed internal seeds).
    """
    spec = _check_name(name)
    if spec.source != "embedded":
        embedded = ", ".join(n for n, s in DATASETS.items() if s.source == "embedded")
        raise SpatialmixError(
            f"load_arrays reads only the embedded datasets ({embedded}); {name!r} comes from TFDS: "
            f"use load_dataset({name!r}, split, data_dir=...)"
        )
    _check_split(name, split)
    opts = _resolve_options(name, options)
    return _embedded_arrays(name, split, tuple(sorted(opts.items())))


def patch_origins(name: str, split: str, **options) -> np.ndarray:
    """Corner of every patch of `patches` or `textures`: int array (N, 3) of (source, row, col).

    Row i describes image i of `load_arrays(name, split, **options)`; `source` is the index of
    the photo (for textures, the class). Train patches lie fully in the left half of their
    photo (col + patch_size <= width // 2), test patches in the right half (col >= width // 2).
    """
    check(name in ("patches", "textures"),
          f"patch_origins is defined for 'patches' and 'textures', not {name!r}")
    _check_split(name, split)
    opts = _resolve_options(name, options)
    return _sample_origins(name, split, tuple(sorted(opts.items())))


def textures_patch_origins(split: str, **options) -> np.ndarray:
    """`patch_origins("textures", split, **options)`: rows of (class, row, col)."""
    return patch_origins("textures", split, **options)


def source_shapes(name: str) -> list[tuple[int, int]]:
    """(height, width) of each source photo of `patches` or `textures`, in source order."""
    check(name in ("patches", "textures"), f"source_shapes is defined for 'patches' and 'textures', not {name!r}")
    images = _texture_images() if name == "textures" else _sample_photos()
    return [tuple(im.shape[:2]) for im in images]


def _readonly(*arrays):
    for a in arrays:
        if a is not None:
            a.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=None)
def _digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int32)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=y, random_state=_DIGITS_SPLIT_SEED)
    idx = {"train": np.sort(idx_train), "test": np.sort(idx_test)}
    return {split: (np.ascontiguousarray(x[i]), y[i]) for split, i in idx.items()}


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) matrix of bilinear weights, half-pixel centres, edges clamped
    (what tf.image.resize(method="bilinear") and skimage order=1 do). Rows are convex."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


def _resize_bilinear(x, size):
    """(N, h, w, C) -> (N, size, size, C), bilinear."""
    a = _bilinear_matrix(x.shape[1], size)
    b = _bilinear_matrix(x.shape[2], size)
    out = np.einsum("ij,njkc,lk->nilc", a, x.astype(np.float64), b)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _texture_images():
    """The 14 texture sources as 2-D float64 arrays in [0, 1] (colour converted to gray)."""
    import skimage.color
    import skimage.data
    import skimage.util

    images = []
    for source in TEXTURE_SOURCES:
        image = getattr(skimage.data, source)()
        image = skimage.util.img_as_float(image)  # scale to [0, 1] first
        if image.ndim == 3:
            image = skimage.color.rgb2gray(image[..., :3])
        images.append(np.ascontiguousarray(image, dtype=np.float64))
    return tuple(images)


@functools.lru_cache(maxsize=None)
def _sample_photos():
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(im, dtype=np.float32) / 255.0 for im in load_sample_images().images)


def _column_range(width, split, p):
    """Allowed corner columns [lo, hi] so a p-wide patch lies in the left (train) / right (test) half."""
    half = width // 2
    return (0, half - p) if split == "train" else (half, width - p)


@functools.lru_cache(maxsize=None)
def _sample_origins(name, split, opts):
    opts = dict(opts)
    p = opts["patch_size"]
    split_id = _SPLITS.index(split)
    if name == "patches":
        photos = _sample_photos()
        n = opts[f"{split}_count"]
        rng = np.random.default_rng([_PATCH_SEED, 0, split_id])
        source = rng.integers(len(photos), size=n)
        rows, cols = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        for k, photo in enumerate(photos):
            sel = np.flatnonzero(source == k)
            h, w = photo.shape[:2]
            lo, hi = _column_range(w, split, p)
            rows[sel] = rng.integers(0, h - p + 1, size=len(sel))
            cols[sel] = rng.integers(lo, hi + 1, size=len(sel))
        out = np.stack([source, rows, cols], axis=1)
    else:  # textures: per class, seeded per (split, class); flat patches redrawn
        n = opts[f"{split}_per_class"]
        blocks = []
        for k, image in enumerate(_texture_images()):
            rng = np.random.default_rng([_PATCH_SEED, 1, split_id, k])
            h, w = image.shape
            lo, hi = _column_range(w, split, p)
            windows = np.lib.stride_tricks.sliding_window_view(image, (p, p))
            kept_r, kept_c, have, tries = [], [], 0, 0
            while have < n:
                tries += 1
                check(tries <= 100, f"textures: too few non-flat {p}x{p} patches in {TEXTURE_SOURCES[k]!r}; "
                                    f"use a different patch_size")
                m = max(2 * (n - have), 64)
                r = rng.integers(0, h - p + 1, size=m)
                c = rng.integers(lo, hi + 1, size=m)
                good = np.flatnonzero(windows[r, c].std(axis=(1, 2)) >= _MIN_PATCH_STD)[: n - have]
                kept_r.append(r[good])
                kept_c.append(c[good])
                have += len(good)
            r, c = np.concatenate(kept_r), np.concatenate(kept_c)
            blocks.append(np.stack([np.full(n, k), r, c], axis=1))
        out = np.concatenate(blocks)
    out = out.astype(np.int64)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=None)
def _embedded_arrays(name, split, opts):
    if name == "digits":
        x, y = _digits_split()[split]
        return _readonly(x, y)
    if name == "digits32":
        x, y = _digits_split()[split]
        return _readonly(_resize_bilinear(x, 32), y.copy())
    origins = _sample_origins(name, split, opts)
    p = dict(opts)["patch_size"]
    if name == "patches":
        photos = _sample_photos()
        x = np.stack([photos[s][r:r + p, c:c + p] for s, r, c in origins]).astype(np.float32)
        return _readonly(np.ascontiguousarray(x), None)
    images = _texture_images()
    x = np.stack([images[s][r:r + p, c:c + p] for s, r, c in origins])
    if dict(opts).get("standardize", 1):
        x = x - x.mean(axis=(1, 2), keepdims=True)
        x = x / x.std(axis=(1, 2), keepdims=True)
    x = np.ascontiguousarray(x[..., None], dtype=np.float32)
    y = origins[:, 0].astype(np.int32)
    return _readonly(x, y)


# --------------------------------------------------------------------------- tf.data


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
    spec = _check_name(name)
    _check_split(name, split)
    opts = _resolve_options(name, options)
    _check_common(batch_size, seed)
    shuffle = (split == "train") if shuffle is None else bool(shuffle)
    spec = dataset_spec(name, **opts)
    tf = _tf()
    kwargs = dict(batch_size=batch_size, augment=bool(augment), seed=int(seed), repeat=repeat,
                  drop_remainder=drop_remainder)
    if spec.source == "embedded":
        x, y = _embedded_arrays(name, split, tuple(sorted(opts.items())))
        labelled = y is not None
        ds = tf.data.Dataset.from_tensor_slices((x, y) if labelled else x)
        if shuffle:
            ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
        return _finish(tf, ds, name, spec, labelled=labelled, to_float=False, **kwargs)
    return _load_tfds(tf, name, split, spec, opts, shuffle=shuffle, data_dir=data_dir, **kwargs)


def num_examples(name: str, split: str, data_dir: str | None = None, **options) -> int:
    """Number of examples in `name`/`split` (for TFDS sets, read from the prepared metadata)."""
    spec = _check_name(name)
    _check_split(name, split)
    opts = _resolve_options(name, options)
    if spec.source == "embedded":
        x, _ = _embedded_arrays(name, split, tuple(sorted(opts.items())))
        return int(len(x))
    import tensorflow_datasets as tfds

    _tf()
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise SpatialmixError(_not_prepared_message(name, data_dir))
    return int(builder.info.splits[_TFDS_SPLITS.get(name, {}).get(split, split)].num_examples)


# --------------------------------------------------------------------------- TFDS


def _not_prepared_message(name, data_dir):
    if data_dir is None:
        from tensorflow_datasets.core import constants

        data_dir = constants.DATA_DIR
    where = " ".join(str(data_dir).split())
    elsewhere = "or pass --data-dir (data_dir=) naming the directory that holds it"
    if name == "imagenet2012":
        return (f"TFDS dataset 'imagenet2012' is not prepared in {where}: put ILSVRC2012_img_train.tar and "
                f"ILSVRC2012_img_val.tar (manual download from image-net.org) in {where}/downloads/manual and run "
                f"`tfds build imagenet2012 --data_dir {where}`, {elsewhere}")
    return (f"TFDS dataset {name!r} is not prepared in {where}: on a machine with network run "
            f"`tfds build {name} --data_dir {where}` and copy {where}/{name.split('/')[0]} here, {elsewhere}")


def _tfds_load(tfds, name, split, *, data_dir, shuffle, seed, decoders=None):
    try:
        return tfds.load(name, split=_TFDS_SPLITS.get(name, {}).get(split, split), data_dir=data_dir,
                         download=False, as_supervised=True, shuffle_files=shuffle, decoders=decoders,
                         read_config=tfds.ReadConfig(shuffle_seed=seed))
    except (AssertionError, tfds.core.DatasetNotFoundError) as error:
        raise SpatialmixError(_not_prepared_message(name, data_dir)) from error


def _load_tfds(tf, name, split, spec, opts, *, shuffle, data_dir, batch_size, augment, seed, repeat,
               drop_remainder):
    import tensorflow_datasets as tfds

    if name == "imagenet2012":
        ds = _tfds_load(tfds, name, split, data_dir=data_dir, shuffle=shuffle, seed=seed,
                        decoders={"image": tfds.decode.SkipDecoding()})
        if shuffle:  # encoded JPEG bytes: cheap to hold in the buffer
            ds = ds.shuffle(5_000, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        size = opts["image_size"]

        def preprocess(index, element):
            encoded, label = element
            image_seed = tf.stack([tf.constant(seed, tf.int64), index])
            image = _imagenet_image(tf, encoded, size, image_seed, train=bool(augment))
            return image, tf.cast(label, tf.int32)

        ds = ds.enumerate().map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    ds = _tfds_load(tfds, name, split, data_dir=data_dir, shuffle=shuffle, seed=seed)
    if name in _CACHE_IN_MEMORY:
        ds = ds.cache()  # decoded uint8, a few hundred MB at most
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return _finish(tf, ds, name, spec, batch_size=batch_size, augment=augment, seed=seed, repeat=repeat,
                   drop_remainder=drop_remainder, labelled=True, to_float=True)


def _imagenet_image(tf, encoded, size, seed, *, train):
    """Decode one image; train: random-resized-crop + flip; else shorter side to 256/224·size, centre crop."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if train:
        seed_box, seed_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed_box,
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        image = tf.slice(image, begin, extent)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [size, size], antialias=True)
        image = tf.image.stateless_random_flip_left_right(image, seed_flip)
    else:
        target = tf.cast(round(size * 256 / 224), tf.float32)
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = target / tf.reduce_min(shape)
        new = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, new, antialias=True)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        image = image[top:top + size, left:left + size]
    image = tf.clip_by_value(image, 0.0, 1.0)
    return tf.ensure_shape(image, (size, size, 3))
