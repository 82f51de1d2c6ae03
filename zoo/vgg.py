"""VGG-16 with batch norm (paper B §3.2, Tables 1, 3, 4), with the last K conv layers modified.

    13 × [conv 3×3 (bias) -> BN -> ReLU], a 2×2 max-pool after blocks 1-5   (K counts these 13)
    global average pooling to 512 features -> FC 4096 -> ReLU -> dropout
                                           -> FC 4096 -> ReLU -> dropout -> FC num_classes

One graph serves CIFAR / Small-ImageNet (32×32: the fifth pool leaves 1×1×512) and
ImageNet (224×224: 7×7×512, averaged to 512). That head is what the paper's counts fit:
34.02 M for 100 classes (Table 1) and 37.70 M for 1000 (Tables 3-4), not the 138 M of a
7·7·512 -> 4096 head. The FC layers are never modified.

Modified layer (see zoo.spatial_info): `shuffle` / `channel_shuffle` put the shuffle
before the conv; `conv1x1` makes the kernel 1×1 (the max-pools stay: VGG has no strided
conv, so `downsampling` has nothing to replace); `gap_fc` pools globally at the input of
the first modified conv, each modified conv becomes FC + BN + ReLU of the same width
(as many weights as the 1×1 conv, so the two counts agree, Table 1), and the later
max-pools are dropped (the map is 1×1). `width_multiplier` scales every conv width and
the FC width.
"""

import keras
from keras import layers

from zoo import spatial_info as si
from zoo.blocks import apply_batch_norm, apply_rescaling, torch_default_init
from zoo.spec import ModelEntry

STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def apply_vgg_conv(x, filters, method, modified, shuffles, name):
    if modified and method == "gap_fc":
        x = layers.Dense(filters, kernel_initializer=torch_default_init(), name=f"{name}_fc")(x)
    else:
        if modified:
            x = shuffles(x, name)
        size = 1 if modified and method == "conv1x1" else 3
        x = layers.Conv2D(filters, size, padding="same", kernel_initializer=si.conv_init(), name=name)(x)
    return layers.Activation("relu", name=f"{name}_relu")(apply_batch_norm(x, f"{name}_bn"))


def vgg16(num_classes=100, width_multiplier=1.0, fc_width=4096, dropout=0.5, spatial_method="none", k=0,
          downsampling="avg", single_layer=None, shuffle_seed=None, input_shape=(32, 32, 3), mean=0.0, std=1.0):
    """VGG-16-BN; `k` counts its 13 conv layers from the last (`single_layer`: one of 1..13)."""
    modified = si.check_options("vgg16", 13, "conv layers", spatial_method, k, downsampling, single_layer)
    shuffles = si.Shuffles(spatial_method, shuffle_seed)
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    index, pooled = 0, False
    for b, widths in enumerate(STAGES, start=1):
        for c, filters in enumerate(widths, start=1):
            name = f"block{b}_conv{c}"
            if spatial_method == "gap_fc" and index in modified and not pooled:
                x, pooled = si.apply_gap(x, name), True
            x = apply_vgg_conv(x, si.scaled(filters, width_multiplier), spatial_method, index in modified,
                               shuffles, name)
            index += 1
        if not pooled:
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    for i in (1, 2):
        x = layers.Dense(si.scaled(fc_width, width_multiplier), kernel_initializer=torch_default_init(),
                         name=f"head_fc{i}")(x)
        x = layers.Dropout(dropout, name=f"head_fc{i}_dropout")(layers.Activation("relu", name=f"head_fc{i}_relu")(x))
    outputs = layers.Dense(num_classes, kernel_initializer=torch_default_init(), dtype="float32",  # float32 logits
                           name="classifier")(x)
    return keras.Model(inputs, outputs, name="vgg16")


MODELS = {
    "vgg16": ModelEntry(
        vgg16, "VGG-16-BN (paper B): 13 conv layers, the last k modified by spatial_method; "
        "CIFAR at 32×32, ImageNet at 224×224", lambda c: 32, modes=("full",),
        tiny={"width_multiplier": 1 / 16, "fc_width": 64, "num_classes": 5, "spatial_method": "gap_fc", "k": 3}),
}
