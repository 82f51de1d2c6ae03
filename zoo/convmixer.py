"""ConvMixer (Trockman & Kolter, "Patches Are All You Need?"), as in the reference code.

    stem:   Conv2D(w, p, stride p) -> GELU -> BN
    block:  x = x + BN(GELU(DW_k(x)));  x = BN(GELU(PW(x)))     (n times)
    head:   GlobalAveragePooling -> Dense(num_classes)          (logits)

The last layer (classifier, or the un-shuffler's projection) computes in float32 under
every dtype policy, so a mixed-precision model still returns float32 logits; under the
default float32 policy this changes nothing, config included.

Conv and Dense weights use PyTorch's default init like the reference; the depthwise
filters are set by `zoo.filters` (see there). Paper A: CIFAR w=128, k=8, p=1;
ImageNet w=512, k=8, p=7.
"""

import keras
from keras import layers

from zoo.blocks import apply_batch_norm, apply_rescaling, torch_default_init
from zoo.spec import ModelEntry


def apply_gelu_bn(x, name):
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    return apply_batch_norm(x, f"{name}_bn")


def apply_convmixer_trunk(x, width, depth, kernel_size, patch_size):
    init = torch_default_init()
    x = layers.Conv2D(width, patch_size, strides=patch_size, kernel_initializer=init, name="stem_patch")(x)
    x = apply_gelu_bn(x, "stem")
    for i in range(1, depth + 1):
        residual = x
        x = layers.DepthwiseConv2D(kernel_size, padding="same", name=f"block{i}_spatial")(x)
        x = apply_gelu_bn(x, f"block{i}_spatial")
        x = layers.Add(name=f"block{i}_residual")([residual, x])
        x = layers.Conv2D(width, 1, kernel_initializer=init, name=f"block{i}_channel")(x)
        x = apply_gelu_bn(x, f"block{i}_channel")
    return x


def convmixer(width=256, depth=8, kernel_size=5, patch_size=2, num_classes=10,
              input_shape=(32, 32, 3), mean=0.0, std=1.0):
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    x = apply_convmixer_trunk(x, width, depth, kernel_size, patch_size)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=torch_default_init(), dtype="float32",
                           name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"convmixer_{width}_{depth}")


def convmixer_unshuffler(width=256, depth=8, kernel_size=5, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    """Paper A §4.4: a patch-size-1 ConvMixer whose head is a 1×1 projection back to the
    image's channels (no pooling), trained to undo a fixed pixel permutation."""
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    x = apply_convmixer_trunk(x, width, depth, kernel_size, patch_size=1)
    outputs = layers.Conv2D(input_shape[-1], 1, kernel_initializer=torch_default_init(), dtype="float32",
                            name="head_projection")(x)
    return keras.Model(inputs, outputs, name=f"convmixer_unshuffler_{width}_{depth}")


MODELS = {
    "convmixer": ModelEntry(
        convmixer, "ConvMixer-w/n (k, p) with a linear classifier", lambda c: c["patch_size"],
        tiny={"width": 8, "depth": 1, "kernel_size": 3, "patch_size": 2, "input_shape": (8, 8, 3)}),
    "convmixer_unshuffler": ModelEntry(
        convmixer_unshuffler, "patch-size-1 ConvMixer with a 1×1 projection back to the image (paper A §4.4)",
        lambda c: 1, tiny={"width": 8, "depth": 1, "kernel_size": 3, "input_shape": (8, 8, 1)}),
}
