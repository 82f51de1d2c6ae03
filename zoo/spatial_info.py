"""Paper B's ways to remove spatial information from the last K layers, shared by its families.

`spatial_method` (the same option on vgg16, resnet50, resnet152, mobilenet_v2, squeezenet):
- `none`:            the baseline;
- `shuffle`:         Shuffle Conv (§3.1): `SpatialShuffle` before the layer's conv. Each
                     channel's h·w positions get their own permutation, a fresh one on every
                     forward pass (training and test alike), shared by the whole batch;
                     gradients flow back through the permutation as through max-pooling;
- `gap_fc`:          global average pooling at the input of the first modified layer; every
                     modified k×k conv becomes a `Dense` of the same width (`*_fc`);
- `conv1x1`:         the k×k convs become 1×1; a stride-2 down-sampling inside a modified
                     layer becomes `downsampling` (App. A.1): `avg` 2×2 pooling (the paper's
                     default), `max` 2×2 pooling, or `stride2` (a strided 1×1 conv);
- `channel_shuffle`: `ChannelShuffle` (App. A.6) before the layer's conv: a fresh permutation
                     of the channel order on every forward pass, shared by the batch.

`k` modifies the last k spatial layers of the family (what a "layer" is: see each family);
`single_layer=i` modifies only layer i (1-based, App. A.3) instead. `k=0` is the baseline
for every method.

The two shuffles are the only custom layers of the zoo (keras.ops only, registered as
`spatialmix>SpatialShuffle` / `spatialmix>ChannelShuffle`). A checkpoint that contains
them loads after they are registered: `zoo.load_model(path)` does it, or import this
module (`import zoo.spatial_info`, or anything that imports `zoo.registry`) before
`keras.models.load_model`; `import zoo` does it too when Keras is already imported.
Every other method is built from Keras layers only: those checkpoints load with plain
`keras.models.load_model(path, safe_mode=True)`.

Evaluation is reproducible through the seed: each shuffle layer owns a
`keras.random.SeedGenerator`; `shuffle_seed` (a config key) seeds layer i with
`shuffle_seed + i`, and `reseed_shuffles(model, seed)` restarts every shuffle layer of a
built or loaded model from a new seed (the paper evaluates with a seed other than the
training one).
"""

import random

import keras
from keras import layers, ops

from zoo.errors import SpatialmixError, check, check_choice

METHODS = ("none", "shuffle", "gap_fc", "conv1x1", "channel_shuffle")
DOWNSAMPLING = ("avg", "max", "stride2")
LOAD_HINT = "run `import zoo` (spatialmix) before keras.models.load_model, or use zoo.load_model(path)"


def scaled(channels, multiplier):
    """A width times the width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * multiplier)))


def conv_init():
    """torchvision's conv init for these families: kaiming normal, fan_out, ReLU gain."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


# --------------------------------------------------------------------------- options


def check_options(family, n_layers, unit, spatial_method, k, downsampling, single_layer):
    """Validate the shared options; return the set of modified layer indices (0-based)."""
    check_choice("spatial_method", spatial_method, METHODS)
    check_choice("downsampling", downsampling, DOWNSAMPLING)
    check(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= n_layers,
          f"k must be an integer from 0 to {n_layers} ({family} has {n_layers} {unit}), got {k!r}")
    check(downsampling == "avg" or spatial_method == "conv1x1",
          f"downsampling={downsampling!r} applies to spatial_method='conv1x1' only; "
          f"drop it or set spatial_method='conv1x1'")
    if single_layer is not None:
        check(isinstance(single_layer, int) and not isinstance(single_layer, bool) and 1 <= single_layer <= n_layers,
              f"single_layer must be a layer index from 1 to {n_layers} ({family} has {n_layers} {unit}), "
              f"got {single_layer!r}")
        check(k == 0, f"set either k (the last k {unit}) or single_layer (one of them), not both")
        check(spatial_method != "gap_fc",
              "single_layer does not work with spatial_method='gap_fc' (its pooling removes the spatial extent "
              "of every later layer too); use k, or another method")
        check(spatial_method != "none", f"single_layer={single_layer} needs a spatial_method other than 'none'")
        return {single_layer - 1}
    check(spatial_method != "none" or k == 0, f"k={k} needs a spatial_method other than 'none' (k=0 is the baseline)")
    return set(range(n_layers - k, n_layers))


def check_variant(variant):
    check_choice("variant", variant, ("cifar", "imagenet"))


# --------------------------------------------------------------------------- custom layers


@keras.saving.register_keras_serializable(package="spatialmix")
class SpatialShuffle(layers.Layer):
    """Shuffle Conv's shuffle (paper B §3.1): per channel, a random permutation of the h·w
    positions, drawn afresh on every call (training or not) and shared by the batch.

    Input and output (batch, h, w, channels). The gradient is the inverse permutation of
    the output gradient (a gather), as through max-pooling.
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.pop("load_with", None)
        super().__init__(**kwargs)
        # None: drawn from Python's RNG (seeded by keras.utils.set_random_seed) and kept in the
        # config, so a checkpoint reloads with the same permutation sequence
        self.seed = random.randint(1, 2**31 - 1) if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def permutation(self, positions, channels):
        """(positions, channels) int indices: column c is channel c's permutation."""
        keys = keras.random.uniform((positions, channels), seed=self.seed_generator)
        return ops.argsort(keys, axis=0)

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        flat = ops.reshape(x, (-1, h * w, c))
        index = ops.expand_dims(self.permutation(h * w, c), 0)
        index = ops.broadcast_to(index, ops.shape(flat))
        return ops.reshape(ops.take_along_axis(flat, index, axis=1), ops.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def reseed(self, seed):
        """Restart the permutation sequence from `seed`."""
        state = self.seed_generator.state
        state.assign(ops.convert_to_tensor([int(seed), 0], dtype=state.dtype))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "load_with": LOAD_HINT}


@keras.saving.register_keras_serializable(package="spatialmix")
class ChannelShuffle(SpatialShuffle):
    """Channel shuffle (paper B App. A.6): a random permutation of the channel order, drawn
    afresh on every call (training or not) and shared by the batch and all positions."""

    def call(self, x):
        keys = keras.random.uniform((x.shape[-1],), seed=self.seed_generator)
        return ops.take(x, ops.argsort(keys), axis=-1)


def shuffle_layers(model):
    return [layer for layer in model.layers if isinstance(layer, SpatialShuffle)]


def reseed_shuffles(model, seed):
    """Restart every shuffle layer of `model` from `seed` (layer i: seed + i). Returns the model."""
    for i, layer in enumerate(shuffle_layers(model)):
        layer.reseed(seed + i)
    return model


def load_model(path, **kwargs):
    """`keras.models.load_model` with the zoo's custom layers registered (this module is imported)."""
    try:
        return keras.models.load_model(path, **kwargs)
    except (OSError, ValueError) as error:
        raise SpatialmixError(f"cannot load model {str(path)!r}: {str(error).splitlines()[0]}") from error


# --------------------------------------------------------------------------- graph pieces


class Shuffles:
    """Hands out the shuffle layers of one model with consecutive seeds (`shuffle_seed + i`)."""

    def __init__(self, method, seed):
        self.method, self.seed, self.count = method, seed, 0

    def __call__(self, x, name):
        """x shuffled if the method shuffles, else x."""
        if self.method not in ("shuffle", "channel_shuffle"):
            return x
        seed = None if self.seed is None else self.seed + self.count
        self.count += 1
        if self.method == "shuffle":
            return SpatialShuffle(seed=seed, name=f"{name}_shuffle")(x)
        return ChannelShuffle(seed=seed, name=f"{name}_chshuffle")(x)


def apply_gap(x, name):
    """GAP+FC's pooling: the map becomes 1×1 (kept 4-D so the following layers stay as they are)."""
    return layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)


def apply_pool(x, downsampling, name):
    """conv1x1's replacement for a stride-2 down-sampling: a 2×2 pooling (avg or max)."""
    pool = layers.AveragePooling2D if downsampling == "avg" else layers.MaxPooling2D
    return pool(2, name=f"{name}_{downsampling}pool")(x)
