"""SqueezeNet 1.0 (Iandola et al., torchvision's squeezenet1_0: 1.25 M parameters, Table 4)
with the last K fire modules modified (paper B §4.3).

    conv 7×7/2 (96) -> ReLU -> max-pool 3×3/2
    fire2 fire3 fire4 -> max-pool -> fire5 fire6 fire7 fire8 -> max-pool -> fire9   (K counts fires)
    dropout -> conv 1×1 (num_classes) -> ReLU -> global average pooling

    fire: squeeze 1×1 -> ReLU -> [expand1: 1×1 -> ReLU | expand2: 3×3 -> ReLU] concatenated

Convs and pools pad "same" (torchvision: no conv padding, ceil-mode pools), so a 224 input
ends at 14×14, not 13×13; the parameters are the same. No batch norm, as in the original.

Modified fire (see zoo.spatial_info): `conv1x1` makes expand2 1×1 (§4.3); `shuffle` /
`channel_shuffle` shuffle the input of expand2 only (the one conv with a spatial extent);
`gap_fc` pools globally at the input of the first modified fire, expand2 becomes FC
(`*_expand2_fc`) and later max-pools are dropped. Fires have no strided conv, so
`downsampling` has nothing to replace.
"""

import keras
from keras import layers

from zoo import spatial_info as si
from zoo.blocks import apply_rescaling
from zoo.spec import ModelEntry

# (squeeze, expand1, expand2) of fire2..fire9; a max-pool follows fire4 and fire8
FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128), (48, 192, 192), (48, 192, 192),
         (64, 256, 256), (64, 256, 256))
POOL_AFTER = (4, 8)


def apply_conv_relu(x, filters, size, name, strides=1):
    x = layers.Conv2D(filters, size, strides=strides, padding="same", kernel_initializer=si.conv_init(), name=name)(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def apply_fire(x, squeeze, expand1, expand2, method, modified, shuffles, name):
    s = apply_conv_relu(x, squeeze, 1, f"{name}_squeeze")
    a = apply_conv_relu(s, expand1, 1, f"{name}_expand1")
    if modified and method == "gap_fc":
        b = layers.Dense(expand2, kernel_initializer=si.conv_init(), name=f"{name}_expand2_fc")(s)
        b = layers.Activation("relu", name=f"{name}_expand2_relu")(b)
    else:
        size = 1 if modified and method == "conv1x1" else 3
        b = apply_conv_relu(shuffles(s, f"{name}_expand2") if modified else s, expand2, size, f"{name}_expand2")
    return layers.Concatenate(name=f"{name}_concat")([a, b])


def squeezenet(num_classes=1000, width_multiplier=1.0, dropout=0.5, spatial_method="none", k=0,
               downsampling="avg", single_layer=None, shuffle_seed=None, input_shape=(224, 224, 3), mean=0.0,
               std=1.0):
    """SqueezeNet 1.0; `k` counts its 8 fire modules from the last (fire9)."""
    modified = si.check_options("squeezenet", len(FIRES), "fire modules", spatial_method, k, downsampling,
                                single_layer)
    shuffles = si.Shuffles(spatial_method, shuffle_seed)
    m = width_multiplier
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    x = apply_conv_relu(x, si.scaled(96, m), 7, "stem_conv", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    pooled = False
    for index, widths in enumerate(FIRES):
        name = f"fire{index + 2}"
        if spatial_method == "gap_fc" and index in modified and not pooled:
            x, pooled = si.apply_gap(x, name), True
        x = apply_fire(x, *(si.scaled(w, m) for w in widths), spatial_method, index in modified, shuffles, name)
        if index + 2 in POOL_AFTER and not pooled:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    # the head (its conv gives the class scores) in float32 under any dtype policy: float32 logits
    x = layers.Conv2D(num_classes, 1, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01),
                      dtype="float32", name="head_conv")(x)
    x = layers.Activation("relu", dtype="float32", name="head_relu")(x)
    outputs = layers.GlobalAveragePooling2D(dtype="float32", name="head_pool")(x)
    return keras.Model(inputs, outputs, name="squeezenet1_0")


MODELS = {
    "squeezenet": ModelEntry(
        squeezenet, "SqueezeNet 1.0 (paper B): 8 fire modules, the last k modified by spatial_method "
        "(conv1x1 makes the 3×3 expand 1×1)", lambda c: 16, modes=("full",),
        tiny={"width_multiplier": 0.125, "num_classes": 5, "input_shape": (32, 32, 3),
              "spatial_method": "gap_fc", "k": 3}),
}
