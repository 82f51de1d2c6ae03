"""Separable pre-activation ResNet (paper A §3.2, §4.1.1).

The identity-mapping ResNet of He et al. 2016b ("Identity Mappings in Deep Residual
Networks"), with every convolution, the stem's included, replaced by a depthwise k×k
conv with depth multiplier d (the spatial mixer) and a 1×1 conv (the channel mixer).
With d = k² the channel mixer has as many weights as the standard conv (eq. 3).

    CIFAR:    stem + 3 stages × n basic blocks (2n spatial layers each) + linear  = 6n+2
    ImageNet: stem (7×7/2 + max-pool) + 4 stages × n basic blocks + linear        = 8n+2

A basic block is BN-ReLU-sepconv(stride s)-BN-ReLU-sepconv plus the shortcut; when
the shape changes the shortcut is a strided 1×1 conv on the pre-activation (a
channel mixer). Stage widths double from `width × width_multiplier`.
"""

import keras
from keras import layers

from zoo.blocks import apply_batch_norm, apply_rescaling, apply_separable
from zoo.spec import ModelEntry


def apply_preact_block(x, filters, strides, kernel_size, depth_multiplier, name):
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(apply_batch_norm(x, f"{name}_preact_bn"))
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_shortcut_channel")(preact)
    else:
        shortcut = x
    y = apply_separable(preact, filters, kernel_size, strides, depth_multiplier, f"{name}_conv1")
    y = layers.Activation("relu", name=f"{name}_conv1_relu")(apply_batch_norm(y, f"{name}_conv1_bn"))
    y = apply_separable(y, filters, kernel_size, 1, depth_multiplier, f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([shortcut, y])


def sep_resnet(variant, depth, width, width_multiplier=1.0, depth_multiplier=9, kernel_size=3,
               num_classes=10, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    imagenet = variant == "imagenet"
    widths = [int(round(width * width_multiplier)) * 2**s for s in range(4 if imagenet else 3)]
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    if imagenet:
        x = apply_separable(x, widths[0], 7, 2, depth_multiplier, "stem")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = apply_separable(x, widths[0], kernel_size, 1, depth_multiplier, "stem")
    for stage, filters in enumerate(widths, start=1):
        for block in range(1, depth + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = apply_preact_block(x, filters, strides, kernel_size, depth_multiplier, f"stage{stage}_block{block}")
    x = layers.Activation("relu", name="final_relu")(apply_batch_norm(x, "final_bn"))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="classifier")(x)  # float32 logits under any policy
    return keras.Model(inputs, outputs, name=f"sep_resnet_{variant}_{6 * depth + 2 if not imagenet else 8 * depth + 2}")


def sep_resnet_cifar(depth=3, width=16, width_multiplier=1.0, depth_multiplier=9, kernel_size=3,
                     num_classes=10, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    """CIFAR variant: 6n+2 layers (n = `depth`), stage widths width·m, 2width·m, 4width·m."""
    return sep_resnet("cifar", depth, width, width_multiplier, depth_multiplier, kernel_size,
                      num_classes, input_shape, mean, std)


def sep_resnet_imagenet(depth=2, width=64, width_multiplier=1.0, depth_multiplier=9, kernel_size=3,
                        num_classes=1000, input_shape=(224, 224, 3), mean=0.0, std=1.0):
    """ImageNet variant: 8n+2 layers, a 7×7/2 separable stem and a max-pool, four stages."""
    return sep_resnet("imagenet", depth, width, width_multiplier, depth_multiplier, kernel_size,
                      num_classes, input_shape, mean, std)


MODELS = {
    "sep_resnet_cifar": ModelEntry(
        sep_resnet_cifar, "separable pre-activation ResNet, CIFAR variant (6n+2 layers)", lambda c: 4,
        tiny={"depth": 1, "width": 4, "depth_multiplier": 2, "input_shape": (16, 16, 3)}),
    "sep_resnet_imagenet": ModelEntry(
        sep_resnet_imagenet, "separable pre-activation ResNet, ImageNet variant (8n+2 layers)", lambda c: 32,
        tiny={"depth": 1, "width": 4, "depth_multiplier": 2, "num_classes": 10, "input_shape": (32, 32, 3)}),
}
