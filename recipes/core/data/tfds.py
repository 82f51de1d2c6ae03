"""The TFDS data sets (paper scale): read from a prepared TFDS data dir. Reading never
downloads: a set that is not prepared raises the project's one-line error, which says how to
prepare it (`tfds build`, or `spatialmix run ... --download`).

- `prepare(name, data_dir)`: what `--download` does before a run reads anything: TFDS's own
  `builder.download_and_prepare()` (downloads the source files, writes the prepared set;
  imagenet2012 needs its archives in `<data_dir>/downloads/manual` first).

- `load_examples(name, split, ...)`: (uint8 image, label) pairs, shuffled if asked, kept in
  memory for the small sets; the pipeline batches, converts and augments them.
- `load_imagenet(tf, split, opts, ...)`: imagenet2012 whole (JPEG decoding with its own crops
  per image), batched and prefetched.
- `count_examples(name, split, data_dir)`: from the prepared metadata.
"""

from zoo.errors import SpatialmixError

_TFDS_SPLITS = {"imagenet2012": {"test": "validation"}, "imagenet_resized/32x32": {"test": "validation"}}
_CACHE_IN_MEMORY = {"cifar10", "cifar100", "mnist", "fashion_mnist"}  # small enough to cache decoded


def _not_prepared_message(name, data_dir):
    if data_dir is None:
        from tensorflow_datasets.core import constants

        data_dir = constants.DATA_DIR
    where = " ".join(str(data_dir).split())
    elsewhere = "or pass --data-dir (data_dir=) naming the directory that holds it"
    if name == "imagenet2012":
        return (f"TFDS dataset 'imagenet2012' is not prepared in {where}: put ILSVRC2012_img_train.tar and "
                f"ILSVRC2012_img_val.tar (manual download from image-net.org) in {where}/downloads/manual and run "
                f"`tfds build imagenet2012 --data_dir {where}` (or pass --download), {elsewhere}")
    return (f"TFDS dataset {name!r} is not prepared in {where}: pass --download to let TFDS download and prepare "
            f"it there, or on a machine with network run `tfds build {name} --data_dir {where}` and copy "
            f"{where}/{name.split('/')[0]} here, {elsewhere}")


def prepare(name, data_dir=None):
    """Download and prepare TFDS set `name` in `data_dir` (TFDS's default if None) unless it is
    prepared already: `tfds.builder(name, data_dir=...).download_and_prepare()`. Returns True if
    it prepared something. A failure (no network, imagenet2012's archives missing) is one line."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return False
    try:
        builder.download_and_prepare()
    except Exception as error:  # network, manual files, disk: TFDS's own words, on one line
        first = " ".join(str(error).split())[:400] or type(error).__name__
        where = " ".join(str(data_dir or builder.data_dir).split())
        raise SpatialmixError(f"TFDS could not download and prepare {name!r} in {where}: {first}") from error
    return True


def _tfds_load(tfds, name, split, *, data_dir, shuffle, seed, decoders=None):
    try:
        return tfds.load(name, split=_TFDS_SPLITS.get(name, {}).get(split, split), data_dir=data_dir,
                         download=False, as_supervised=True, shuffle_files=shuffle, decoders=decoders,
                         read_config=tfds.ReadConfig(shuffle_seed=seed))
    except (AssertionError, tfds.core.DatasetNotFoundError) as error:
        raise SpatialmixError(_not_prepared_message(name, data_dir)) from error


def load_examples(name, split, *, shuffle, data_dir, seed):
    """The (image uint8, label) pairs of `name`/`split`, unbatched."""
    import tensorflow_datasets as tfds

    ds = _tfds_load(tfds, name, split, data_dir=data_dir, shuffle=shuffle, seed=seed)
    if name in _CACHE_IN_MEMORY:
        ds = ds.cache()  # decoded uint8, a few hundred MB at most
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds


def load_imagenet(tf, split, opts, *, shuffle, data_dir, batch_size, augment, seed, repeat, drop_remainder):
    """imagenet2012 as batches of (float32 images in [0, 1], int32 labels): train crops are
    random-resized (+ flip) when `augment`, else the shorter side goes to 256/224·size and the
    centre is cropped."""
    import tensorflow_datasets as tfds

    name = "imagenet2012"
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


def count_examples(name, split, data_dir):
    """Number of examples in a prepared TFDS set's split, from its metadata."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise SpatialmixError(_not_prepared_message(name, data_dir))
    return int(builder.info.splits[_TFDS_SPLITS.get(name, {}).get(split, split)].num_examples)


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
