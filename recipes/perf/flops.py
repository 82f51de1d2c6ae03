"""FLOP counting for the bench, from layer shapes: conv and dense multiply-adds × 2.

Elementwise ops (BN, GELU, residual adds), pooling and the optimizer are not counted.
Training = forward + input gradient of every layer that has a trainable layer before it
+ weight gradient of every trainable layer (each as many FLOPs as the layer's forward):
about 3× forward in full, less in chans/space.
"""

import math


def conv_flops(out_shape, kernel_hw, in_per_group):
    """2 × multiply-adds of a conv producing `out_shape` (N, H, W, C_out)."""
    return 2 * math.prod(out_shape) * kernel_hw[0] * kernel_hw[1] * in_per_group


def train_flops(layers):
    """layers: [(forward_flops, trainable)] in topological order -> (forward, train) FLOPs.
    Train = forward + input gradient (if a trainable layer precedes) + weight gradient (if trainable)."""
    forward = sum(f for f, _ in layers)
    total, seen_trainable = forward, False
    for f, trainable in layers:
        if seen_trainable:
            total += f
        if trainable:
            total += f
            seen_trainable = True
    return forward, total


def keras_layer_flops(model, batch):
    """[(forward FLOPs, trainable)] for every conv/dense layer of a Keras model, graph order,
    plus (0, True) for every other layer with trainable weights (it makes the input gradient
    of the layers before it necessary)."""
    from keras import layers as L

    out = []
    for layer in model.layers:
        if isinstance(layer, L.DepthwiseConv2D):
            shape = (batch, *layer.output.shape[1:])
            out.append((conv_flops(shape, layer.kernel_size, 1), layer.trainable))
        elif isinstance(layer, L.Conv2D):
            shape = (batch, *layer.output.shape[1:])
            c_in = layer.input.shape[-1] // layer.groups
            out.append((conv_flops(shape, layer.kernel_size, c_in), layer.trainable))
        elif isinstance(layer, L.Dense):
            out.append((2 * batch * layer.input.shape[-1] * layer.units, layer.trainable))
        elif layer.trainable_weights:  # BN etc.: no FLOPs counted, but gradients flow back through it
            out.append((0, True))
    return out


def torch_layer_flops(net, x):
    """[(forward FLOPs, trainable)] of every conv/linear layer in call order, for input batch `x`:
    2 × multiply-adds, counted from the shapes seen in one forward pass (as keras_layer_flops counts);
    (0, True) for a trainable BatchNorm (gradients must flow back through it)."""
    import torch
    from torch import nn

    found = []

    def hook(module, inputs, output):
        trainable = any(p.requires_grad for p in module.parameters())
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            flops = 2 * output.numel() * kh * kw * (module.in_channels // module.groups)
        else:
            flops = 2 * output.shape[0] * module.in_features * module.out_features
        found.append((int(flops), trainable))

    def other(module, inputs, output):
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            found.append((0, True))

    handles = [m.register_forward_hook(hook if isinstance(m, (nn.Conv2d, nn.Linear)) else other)
               for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return found
