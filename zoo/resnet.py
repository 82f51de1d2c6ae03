"""ResNet-50 and ResNet-152 (torchvision's v1.5 bottleneck) with the last K bottlenecks
modified (paper B §3.1-3.2, App. A.1, A.7 / Fig. 11).

    stem:  imagenet: conv 7×7/2 -> BN -> ReLU -> max-pool 3×3/2
           cifar (CIFAR, Small-ImageNet): conv 3×3/1 -> BN -> ReLU, no max-pool (§3.2)
    4 stages of bottlenecks, [3, 4, 6, 3] (ResNet-50, 16) or [3, 8, 36, 3] (ResNet-152, 50):
           1×1 conv -> BN -> ReLU -> 3×3 conv (stride) -> BN -> ReLU -> 1×1 conv (×4) -> BN,
           plus the shortcut (1×1 conv (stride) -> BN when the shape changes), -> ReLU
    head:  global average pooling -> FC num_classes                        (K counts bottlenecks)

Choices where the paper leaves room, and why:
- Stride on the 3×3 conv (torchvision's v1.5, whose counts the paper's match; v1 strides the
  first 1×1, same count). The down-sampling then sits in the one conv a method modifies, so
  "a stride-2 down-sampling inside a modified block" is well defined.
- Only the 3×3 conv of a bottleneck changes (§3.2, App. A.7). `shuffle`/`channel_shuffle`:
  the shuffle goes right before that conv, which keeps its stride. `conv1x1`: it becomes
  1×1; in a modified stride-2 block `downsampling` decides: `avg`/`max` puts a 2×2 pooling
  before the 1×1 conv and before the shortcut's (now stride-1) 1×1 conv, so the shortcut is
  pooled to match; `stride2` keeps stride-2 1×1 convs on both paths. Pooling replaces only
  the strides of modified blocks; unmodified blocks keep their strided 3×3 conv.
- `gap_fc`: GAP at the input of the first modified bottleneck, before the split, so the skip
  path is pooled too (Fig. 11); in modified blocks the 3×3 conv becomes FC (`*_conv2_fc`) and
  strides are dropped (the map is 1×1); the 1×1 convs stay (on a 1×1 map they are FC).
- Conv init: torchvision's (kaiming normal, fan_out); FC: PyTorch's default.
"""

import keras
from keras import layers

from zoo import spatial_info as si
from zoo.blocks import apply_batch_norm, apply_rescaling, torch_default_init
from zoo.spec import ModelEntry

DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet152": (3, 8, 36, 3)}


def apply_conv_bn(x, filters, size, strides, name, relu=True):
    x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=si.conv_init(), name=name)(x)
    x = apply_batch_norm(x, f"{name}_bn")
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def apply_bottleneck(x, filters, strides, method, modified, downsampling, shuffles, name):
    """One bottleneck; `modified` applies `method` to its 3×3 conv (`{name}_conv2`)."""
    pool = modified and method == "conv1x1" and strides == 2 and downsampling != "stride2"
    project = strides != 1 or x.shape[-1] != 4 * filters  # as in the baseline, whatever the method
    if modified and method == "gap_fc":
        strides = 1
    shortcut = x
    if pool:
        shortcut = si.apply_pool(shortcut, downsampling, f"{name}_shortcut")
    if project:
        shortcut = apply_conv_bn(shortcut, 4 * filters, 1, 1 if pool else strides, f"{name}_shortcut", relu=False)
    y = apply_conv_bn(x, filters, 1, 1, f"{name}_conv1")
    if modified and method == "gap_fc":
        y = layers.Dense(filters, use_bias=False, kernel_initializer=torch_default_init(), name=f"{name}_conv2_fc")(y)
        y = layers.Activation("relu", name=f"{name}_conv2_relu")(apply_batch_norm(y, f"{name}_conv2_bn"))
    elif modified and method == "conv1x1":
        if pool:
            y = si.apply_pool(y, downsampling, f"{name}_conv2")
        y = apply_conv_bn(y, filters, 1, 1 if pool else strides, f"{name}_conv2")
    else:
        if modified:
            y = shuffles(y, f"{name}_conv2")
        y = apply_conv_bn(y, filters, 3, strides, f"{name}_conv2")
    y = apply_conv_bn(y, 4 * filters, 1, 1, f"{name}_conv3", relu=False)
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet(arch, variant, num_classes, width_multiplier, spatial_method, k, downsampling, single_layer,
           shuffle_seed, input_shape, mean, std):
    si.check_variant(variant)
    depths = DEPTHS[arch]
    modified = si.check_options(arch, sum(depths), "bottlenecks", spatial_method, k, downsampling, single_layer)
    shuffles = si.Shuffles(spatial_method, shuffle_seed)
    width = si.scaled(64, width_multiplier)
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    if variant == "imagenet":
        x = apply_conv_bn(x, width, 7, 2, "stem_conv")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = apply_conv_bn(x, width, 3, 1, "stem_conv")
    index = 0
    for stage, depth in enumerate(depths, start=1):
        for block in range(1, depth + 1):
            name = f"stage{stage}_block{block}"
            if spatial_method == "gap_fc" and index == min(modified, default=None):
                x = si.apply_gap(x, name)
            strides = 2 if stage > 1 and block == 1 else 1
            x = apply_bottleneck(x, width * 2 ** (stage - 1), strides, spatial_method, index in modified,
                                 downsampling, shuffles, name)
            index += 1
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=torch_default_init(), dtype="float32",  # float32 logits
                           name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{arch}_{variant}")


def resnet50(variant="cifar", num_classes=100, width_multiplier=1.0, spatial_method="none", k=0,
             downsampling="avg", single_layer=None, shuffle_seed=None, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    """ResNet-50; `k` counts its 16 bottlenecks from the last. variant: cifar | imagenet."""
    return resnet("resnet50", variant, num_classes, width_multiplier, spatial_method, k, downsampling,
                  single_layer, shuffle_seed, input_shape, mean, std)


def resnet152(variant="imagenet", num_classes=1000, width_multiplier=1.0, spatial_method="none", k=0,
              downsampling="avg", single_layer=None, shuffle_seed=None, input_shape=(224, 224, 3), mean=0.0,
              std=1.0):
    """ResNet-152; `k` counts its 50 bottlenecks from the last. variant: cifar | imagenet."""
    return resnet("resnet152", variant, num_classes, width_multiplier, spatial_method, k, downsampling,
                  single_layer, shuffle_seed, input_shape, mean, std)


def _downsampling(c):
    return 32 if c["variant"] == "imagenet" else 8


TINY = {"variant": "cifar", "width_multiplier": 1 / 16, "num_classes": 5, "input_shape": (16, 16, 3),
        "spatial_method": "conv1x1", "k": 5}

MODELS = {
    "resnet50": ModelEntry(
        resnet50, "ResNet-50 (paper B): 16 bottlenecks, the last k modified by spatial_method; "
        "variant cifar (3×3/1 stem, no max-pool) or imagenet", _downsampling, modes=("full",), tiny=TINY),
    "resnet152": ModelEntry(
        resnet152, "ResNet-152 (paper B): 50 bottlenecks, the last k modified by spatial_method; "
        "variant imagenet or cifar", _downsampling, modes=("full",), tiny={**TINY, "k": 15}),
}
