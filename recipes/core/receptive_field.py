"""Theoretical receptive fields of plain (single-branch) conv nets, by the standard recurrence.

A layer with kernel k and stride s maps the receptive field r and the jump j (the distance,
in input pixels, between neighbouring positions of its input) to

    r_out = r_in + (k - 1) * j_in
    j_out = j_in * s

starting from r = 1, j = 1 at the image (Araujo, Norris & Sim 2019, "Computing receptive
fields of convolutional neural networks", Distill). Padding does not change r.

VGG-16 (13 3×3/1 convs, a 2×2/2 max-pool after each block): conv1_1 3, conv1_2 5, pool1 6,
conv2_x 10, 14, pool2 16, conv3_x 24, 32, 40, pool3 44, conv4_x 60, 76, 92, pool4 100,
conv5_x 132, 164, 196, pool5 212.

Paper B (Fig. 3 right) plots accuracy against "the receptive field size of the last layer"
when the last K 3×3 convs of VGG-16 are 1×1: `vgg16_last_layer_rf(K)` is the receptive field
at the output of the last 3×3 conv, including the max-pool that directly follows it when
there is one. For K = 0..10 it gives the paper's axis ticks 212, 164, 132, 100, 76, 60, 44,
32, 24, 16, 10 (a 1×1 conv adds nothing; a later pool would add (2-1)·j, which the paper's
ticks leave out).
"""

VGG16_BLOCKS = (2, 2, 3, 3, 3)


def receptive_fields(layers):
    """[(name, r, j)] after each of `layers`, a sequence of (name, kernel, stride)."""
    r, j, out = 1, 1, []
    for name, kernel, stride in layers:
        r = r + (kernel - 1) * j
        j = j * stride
        out.append((name, r, j))
    return out


def vgg16_layers(k_1x1=0):
    """VGG-16's conv and pool layers as (name, kernel, stride), the last `k_1x1` convs 1×1."""
    if not (isinstance(k_1x1, int) and 0 <= k_1x1 <= 13):
        raise ValueError(f"k_1x1 must be an integer from 0 to 13, got {k_1x1!r}")
    layers, index = [], 0
    for b, n in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, n + 1):
            layers.append((f"conv{b}_{c}", 1 if index >= 13 - k_1x1 else 3, 1))
            index += 1
        layers.append((f"pool{b}", 2, 2))
    return layers


def vgg16_receptive_fields(k_1x1=0):
    """{layer name: receptive field} of VGG-16 with the last `k_1x1` convs 1×1."""
    return {name: r for name, r, _ in receptive_fields(vgg16_layers(k_1x1))}


def vgg16_last_layer_rf(k_1x1):
    """Receptive field at the output of VGG-16's last 3×3 conv (and the pool right after it,
    if any) when the last `k_1x1` convs are 1×1; 1 when all 13 are (no spatial layer left)."""
    layers = vgg16_layers(k_1x1)
    fields = receptive_fields(layers)
    last = None
    for i, (name, kernel, _) in enumerate(layers):
        if name.startswith("conv") and kernel > 1:
            last = i
    if last is None:
        return 1
    if last + 1 < len(layers) and layers[last + 1][0].startswith("pool"):
        last += 1
    return fields[last][1]
