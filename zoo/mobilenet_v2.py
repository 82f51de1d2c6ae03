"""MobileNetV2 (Sandler et al. 2018, torchvision's layout) with the last K inverted residual
blocks modified (paper B §4.3, Table 4).

    stem:   conv 3×3/2 (32) -> BN -> ReLU6
    17 inverted residual blocks (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
            (6,96,3,1) (6,160,3,2) (6,320,1,1):
            [1×1 expand ×t -> BN -> ReLU6] -> 3×3 depthwise (stride) -> BN -> ReLU6
            -> 1×1 project -> BN, + input when the shape is kept                (K counts these)
    head:   1×1 conv (1280) -> BN -> ReLU6 -> global average pooling -> dropout -> FC

The depthwise convs are `*_spatial` and the 1×1 convs `*_channel`, so the mixing modes
(full | chans | space) and the spatial filter kinds of zoo.filters apply here too; their
initial values come from `filters` (default `random`: PyTorch's default scale).

Modified block (see zoo.spatial_info):
- `conv1x1` (the paper's modification): the depthwise conv is removed together with its BN
  and ReLU6. In a stride-2 block `downsampling` replaces it: `avg`/`max` 2×2 pooling where
  the depthwise conv was, or `stride2`: the project 1×1 conv takes the stride.
- `gap_fc`: GAP at the input of the first modified block, and each modified block loses its
  depthwise conv as under conv1x1 (on a 1×1 map it would only scale each channel, which the
  next BN does already); its 1×1 convs are FC on the pooled features. Strides are dropped.
- `shuffle` / `channel_shuffle`: the shuffle goes before the depthwise conv.
`width_multiplier` scales every width (the 1280 of the head too: cpu scale shrinks it),
rounded to integers (not to torchvision's multiples of 8; at 1.0 they agree).
"""

import keras
from keras import layers

from zoo import spatial_info as si
from zoo.blocks import apply_batch_norm, apply_rescaling, torch_default_init
from zoo.spec import ModelEntry

BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def apply_bn_relu6(x, name):
    return layers.ReLU(6.0, name=f"{name}_relu")(apply_batch_norm(x, f"{name}_bn"))


def apply_inverted_residual(x, expansion, filters, strides, method, modified, downsampling, shuffles, name):
    inputs, hidden = x, x.shape[-1] * expansion
    residual = strides == 1 and x.shape[-1] == filters  # as in the baseline, whatever the method
    if expansion != 1:
        x = layers.Conv2D(hidden, 1, use_bias=False, kernel_initializer=si.conv_init(), name=f"{name}_expand_channel")(x)
        x = apply_bn_relu6(x, f"{name}_expand")
    project_strides = 1
    if modified and method in ("conv1x1", "gap_fc"):
        if method == "gap_fc" or strides == 1:
            strides = 1
        elif downsampling == "stride2":
            project_strides, strides = 2, 1
        else:
            x = si.apply_pool(x, downsampling, f"{name}_dw")
            strides = 1
    else:
        if modified:
            x = shuffles(x, f"{name}_dw")
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw_spatial")(x)
        x = apply_bn_relu6(x, f"{name}_dw")
    x = layers.Conv2D(filters, 1, strides=project_strides, use_bias=False, kernel_initializer=si.conv_init(),
                      name=f"{name}_project_channel")(x)
    x = apply_batch_norm(x, f"{name}_project_bn")
    if residual:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def mobilenet_v2(num_classes=1000, width_multiplier=1.0, dropout=0.2, spatial_method="none", k=0,
                 downsampling="avg", single_layer=None, shuffle_seed=None, input_shape=(224, 224, 3), mean=0.0,
                 std=1.0):
    """MobileNetV2; `k` counts its 17 inverted residual blocks from the last (their 3×3 depthwise)."""
    n_blocks = sum(n for _, _, n, _ in BLOCKS)
    modified = si.check_options("mobilenet_v2", n_blocks, "inverted residual blocks", spatial_method, k,
                                downsampling, single_layer)
    shuffles = si.Shuffles(spatial_method, shuffle_seed)
    inputs = keras.Input(input_shape, name="images")
    x = apply_rescaling(inputs, mean, std)
    x = layers.Conv2D(si.scaled(32, width_multiplier), 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=si.conv_init(), name="stem_conv")(x)
    x = apply_bn_relu6(x, "stem")
    index = 0
    for expansion, filters, repeats, stride in BLOCKS:
        for r in range(repeats):
            name = f"block{index + 1}"
            if spatial_method == "gap_fc" and index == min(modified, default=None):
                x = si.apply_gap(x, name)
            x = apply_inverted_residual(x, expansion, si.scaled(filters, width_multiplier), stride if r == 0 else 1,
                                        spatial_method, index in modified, downsampling, shuffles, name)
            index += 1
    x = layers.Conv2D(si.scaled(1280, width_multiplier), 1, use_bias=False, kernel_initializer=si.conv_init(),
                      name="head_conv_channel")(x)
    x = apply_bn_relu6(x, "head_conv")
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=torch_default_init(), dtype="float32",  # float32 logits
                           name="classifier")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


MODELS = {
    "mobilenet_v2": ModelEntry(
        mobilenet_v2, "MobileNetV2 (paper B): 17 inverted residual blocks, the last k modified by spatial_method "
        "(conv1x1 removes the depthwise conv); depthwise = *_spatial, so full/chans/space apply",
        lambda c: 32,
        tiny={"width_multiplier": 0.125, "num_classes": 5, "input_shape": (32, 32, 3),
              "spatial_method": "conv1x1", "k": 4}),
}
