"""TFDS-format stand-ins for the paper-scale datasets, written by the tests themselves (no network).

    from tests import tfds_fixtures
    written = tfds_fixtures.write(data_dir)            # every dataset a paper scale names
    written = tfds_fixtures.write(data_dir, ["cifar10"], train=20, test=10)

Each stand-in is a real prepared TFDS dataset under its registered name, written with
`tfds.dataset_builders.store_as_tfds_dataset` from that builder's own features and version
(`tfds.builder(name, data_dir=d).info.features`: a hand-made features dict fails at read time
with "Feature: id … is required"), so `tfds.load(name, data_dir=d, download=False)` reads
it through the real path. Images are random uint8 of the set's shape (imagenet2012: random
sizes, JPEG-encoded by TFDS as the real set is); labels are random classes. Needs TensorFlow
and `importlib_resources`.
"""

import numpy as np

# Every TFDS dataset a recipe's paper scale names (tests/test_paper_scale.py checks the list).
NAMES = ("cifar10", "cifar100", "mnist", "fashion_mnist", "imagenet2012", "imagenet_resized/32x32")
# the splits TFDS names (recipes read "test" as "validation" for the two ImageNets)
SPLITS = {"imagenet2012": ("train", "validation"), "imagenet_resized/32x32": ("train", "validation")}


def write(data_dir, names=NAMES, *, train=8, test=8, seed=0):
    """Write tiny prepared stand-ins of `names` into `data_dir`; returns {name: {split: examples}}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in names:
        train_split, test_split = SPLITS.get(name, ("train", "test"))
        features = _builder(name, data_dir).info.features
        splits = {train_split: [_example(features, name, train_split, i, rng) for i in range(train)],
                  test_split: [_example(features, name, test_split, i, rng) for i in range(test)]}
        store(name, data_dir, splits)
        written[name] = splits
    return written


def store(name, data_dir, splits):
    """Write `splits` ({split: [example dict]}) as the prepared TFDS dataset `name` in `data_dir`."""
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    config = builder.builder_config.name if builder.builder_config else None
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name.split("/")[0], version=builder.version, features=builder.info.features, config=config,
        split_datasets={split: list(enumerate(examples)) for split, examples in splits.items()}, data_dir=data_dir)


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=str(data_dir))


def _example(features, name, split, index, rng):
    """One random example with exactly the builder's features."""
    import tensorflow_datasets as tfds

    out = {}
    for key, feature in features.items():
        if isinstance(feature, tfds.features.Image):
            height, width, channels = feature.shape
            height = height or int(rng.integers(40, 90))   # imagenet2012: images of any size
            width = width or int(rng.integers(40, 90))
            out[key] = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        elif isinstance(feature, tfds.features.ClassLabel):
            out[key] = int(rng.integers(feature.num_classes))
        elif isinstance(feature, tfds.features.Text):
            out[key] = f"{split}_{index}.JPEG" if key == "file_name" else f"{split}_{index}"
        else:
            raise ValueError(f"{name}: no stand-in for feature {key!r} ({type(feature).__name__})")
    return out
