"""The peer baseline of `spatialmix bench`: a plain PyTorch ConvMixer, as in the reference code.

    from recipes.perf import torch_peer
    net = torch_peer.convmixer(width=256, depth=8, kernel_size=5, patch_size=2, num_classes=10)
    torch_peer.set_mode(net, "chans")                   # freeze stem + depthwise (weights and biases)
    torch_peer.copy_weights_from_keras(keras_model, net)  # same weights as a zoo ConvMixer

The architecture is the reference one (Trockman & Kolter, "Patches Are All You Need?"):

    nn.Sequential(Conv2d(3, w, p, stride=p), GELU, BatchNorm2d,
                  *[Sequential(Residual(Sequential(Conv2d(w, w, k, groups=w, padding="same"), GELU, BatchNorm2d)),
                               Conv2d(w, w, 1), GELU, BatchNorm2d) for _ in range(depth)],
                  AdaptiveAvgPool2d((1, 1)), Flatten, Linear(w, n))

in NCHW (PyTorch's native layout), with the zoo's BatchNorm settings (Keras momentum 0.9 =
PyTorch momentum 0.1, eps 1e-5). It takes NCHW images; `from_nhwc` converts a batch.
The zoo ConvMixer's `normalize` (Rescaling) layer is the identity with mean 0 / std 1,
which is what the bench and the equivalence test use; the peer has no such layer.

This module imports torch only: it never imports keras, so it can run in the bench's peer
subprocess without a Keras backend. `copy_weights_from_keras` reads the Keras weights
through `.numpy()`-able variables (`keras.ops.convert_to_numpy` is not needed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zoo.modes import MODES


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def _bn(width):
    return nn.BatchNorm2d(width, eps=1e-5, momentum=0.1)


def convmixer(width=256, depth=8, kernel_size=5, patch_size=2, num_classes=10, in_channels=3):
    """The reference ConvMixer-width/depth as an `nn.Sequential` (layer indices as in the reference)."""
    w = width
    return nn.Sequential(
        nn.Conv2d(in_channels, w, kernel_size=patch_size, stride=patch_size),
        nn.GELU(),
        _bn(w),
        *[nn.Sequential(
            Residual(nn.Sequential(
                nn.Conv2d(w, w, kernel_size, groups=w, padding="same"),
                nn.GELU(),
                _bn(w),
            )),
            nn.Conv2d(w, w, kernel_size=1),
            nn.GELU(),
            _bn(w),
        ) for _ in range(depth)],
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(w, num_classes),
    )


def depth_of(net):
    return len(net) - 6  # stem conv/gelu/bn + blocks + pool/flatten/linear


def stem(net):
    return net[0]


def spatial_convs(net):
    """The depthwise convs (the spatial mixers), block by block."""
    return [net[3 + i][0].fn[0] for i in range(depth_of(net))]


def channel_convs(net):
    return [net[3 + i][1] for i in range(depth_of(net))]


def set_mode(net, mode):
    """Freeze like `zoo.set_mode`: chans freezes the stem and the depthwise convs (weights and
    biases), space freezes the 1×1 convs; BN and the classifier stay trainable. In place."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    for p in net.parameters():
        p.requires_grad_(True)
    frozen = {"full": [], "chans": [stem(net), *spatial_convs(net)], "space": channel_convs(net)}[mode]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return net


def count_params(net, trainable_only=False):
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only))


def init_spatial_uniform(net, seed=0):
    """U(-1/k, 1/k) depthwise filters (PyTorch's default scale, which zoo.filters 'random' copies)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in spatial_convs(net):
            k = conv.kernel_size[0]
            conv.weight.uniform_(-1.0 / k, 1.0 / k, generator=g)
    return net


def from_nhwc(x):
    """A NHWC numpy/torch batch -> a contiguous NCHW float32 torch tensor."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return x.permute(0, 3, 1, 2).contiguous()


def _np(variable):
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _layer_by_name(keras_model, name):
    for layer in keras_model.layers:
        if layer.name == name:
            return layer
    raise KeyError(f"keras model {keras_model.name!r} has no layer {name!r}; is it a zoo ConvMixer?")


def _set(param, value):
    value = torch.as_tensor(np.ascontiguousarray(value))
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"shape mismatch: torch {tuple(param.shape)} vs keras {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


def _copy_bn(layer, bn):
    gamma, beta, mean, var = (_np(w) for w in layer.weights)
    _set(bn.weight, gamma)
    _set(bn.bias, beta)
    _set(bn.running_mean, mean)
    _set(bn.running_var, var)


def _copy_conv(layer, conv, depthwise=False):
    kernel, bias = (_np(w) for w in layer.weights)
    # Keras Conv2D: (kh, kw, in, out) -> torch (out, in, kh, kw);
    # Keras DepthwiseConv2D: (kh, kw, C, 1) -> torch (C, 1, kh, kw).
    _set(conv.weight, kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1))
    _set(conv.bias, bias)


def copy_weights_from_keras(keras_model, torch_model):
    """Copy a zoo ConvMixer's weights (kernels, biases, BN parameters and moving statistics)
    into the peer. The zoo model's `normalize` layer must be the identity (mean 0, std 1)."""
    rescale = _layer_by_name(keras_model, "normalize")
    scale, offset = np.asarray(rescale.scale, np.float32), np.asarray(rescale.offset, np.float32)
    if not (np.allclose(scale, 1.0) and np.allclose(offset, 0.0)):
        raise ValueError("the peer has no normalisation layer: build the zoo model with mean=0, std=1")
    _copy_conv(_layer_by_name(keras_model, "stem_patch"), torch_model[0])
    _copy_bn(_layer_by_name(keras_model, "stem_bn"), torch_model[2])
    for i in range(depth_of(torch_model)):
        block = torch_model[3 + i]
        _copy_conv(_layer_by_name(keras_model, f"block{i + 1}_spatial"), block[0].fn[0], depthwise=True)
        _copy_bn(_layer_by_name(keras_model, f"block{i + 1}_spatial_bn"), block[0].fn[2])
        _copy_conv(_layer_by_name(keras_model, f"block{i + 1}_channel"), block[1])
        _copy_bn(_layer_by_name(keras_model, f"block{i + 1}_channel_bn"), block[3])
    kernel, bias = (_np(w) for w in _layer_by_name(keras_model, "classifier").weights)
    _set(torch_model[-1].weight, kernel.T)
    _set(torch_model[-1].bias, bias)
    return torch_model


def make_optimizer(net, lr=1e-3, weight_decay=0.004):
    """AdamW over the trainable parameters, with Keras AdamW's defaults (lr 1e-3, wd 0.004)."""
    return torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr,
                             weight_decay=weight_decay, eps=1e-7)


# The 16-bit type of each mixed precision, for torch.autocast.
AUTOCAST = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}


def make_train_step(net, optimizer, autocast=None):
    """A plain PyTorch training step: forward, cross-entropy on logits, backward, AdamW update.

    `autocast` (torch.bfloat16 or torch.float16): the forward pass and the loss run under
    `torch.autocast` in that type (PyTorch's automatic mixed precision; weights stay float32),
    and float16 scales the loss with a `torch.amp.GradScaler`, as PyTorch's AMP recipe does."""
    loss_fn = nn.CrossEntropyLoss()
    device = next(net.parameters()).device.type
    scaler = torch.amp.GradScaler(device) if autocast == torch.float16 else None

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=autocast, enabled=autocast is not None):
            loss = loss_fn(net(x), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss

    return step
