"""Fast ops for the torch backend (the profile: layout copies, composite BN, separate bias adds).

- Convolutions on a zero-copy channels-last view (`permute`, no `.contiguous()`), so oneDNN
  runs its NHWC kernels; Keras 3.15 copies NHWC->NCHW, then to channels-last, per conv.
- `Conv2D` / `DepthwiseConv2D` pass their bias to the convolution (one pass less each way
  than a separate broadcast add and its gradient reduction).
- `BatchNormalization` runs PyTorch's native batch norm (one kernel each way) instead of
  ~10 elementwise/reduction ops and their gradients; moving statistics as Keras computes them.
- A strided 1×1 convolution (a ResNet shortcut, conv1x1's `stride2`) runs as the 1×1
  convolution of the strided slice of its input: the same sums, and it keeps clear of
  oneDNN's strided 1×1 weight gradient on channels-last input, which is wrong (and can hang)
  when the layer has fewer input channels than the CPU's vector block (8 on AVX2, 16 on
  AVX-512; uxlfoundation/oneDNN#6035). Keras's own torch conv goes there too: with
  SPATIALMIX_FAST_OPS=0 such a layer (e.g. the smoke-scale separable ResNet's shortcuts,
  4 channels) trains on a wrong gradient.

`recipes.core.runtime` is the front that applies these; nothing here changes a model.
"""

from recipes.core.runtime import _dtype, make_bn_call


def apply(patch, keras):
    from keras.src.backend.torch import nn as knn

    patch(knn, "conv", _make_torch_conv(knn.conv))
    patch(keras.layers.Conv2D, "call", _make_torch_conv_call(keras.layers.Conv2D.call, depthwise=False))
    patch(keras.layers.DepthwiseConv2D, "call",
          _make_torch_conv_call(keras.layers.DepthwiseConv2D.call, depthwise=True))
    patch(keras.layers.BatchNormalization, "call", make_bn_call(keras.layers.BatchNormalization.call, _bn_torch))


def _make_torch_conv(original):
    import torch.nn.functional as F
    from keras.src import backend as kbackend
    from keras.src.backend.torch import nn as knn
    from keras.src.backend.torch.core import convert_to_tensor
    from keras.src.utils.argument_validation import standardize_tuple

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = kbackend.standardize_data_format(data_format)
        inputs = convert_to_tensor(inputs)
        kernel = convert_to_tensor(kernel)
        if inputs.ndim != 4 or data_format != "channels_last":
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = standardize_tuple(strides, 2, "strides")
        dilation = standardize_tuple(dilation_rate, 2, "dilation_rate")
        # A contiguous NHWC tensor permuted to NCHW *is* a channels-last tensor: no copy.
        x = inputs.permute(0, 3, 1, 2)
        w = kernel.permute(3, 2, 0, 1)  # (kh, kw, in/groups, out) -> (out, in/groups, kh, kw)
        if x.shape[1] % w.shape[1]:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        groups = x.shape[1] // w.shape[1]
        x, strides = _unit_stride_1x1(x, w, strides)
        if padding == "same":
            x, pad = knn._apply_same_padding(x, w.shape[2:], strides, "channels_first", "conv", dilation)
        else:
            pad = 0
        out = F.conv2d(x, w, stride=strides, padding=pad, dilation=dilation, groups=groups)
        return out.permute(0, 2, 3, 1)

    return conv


def _make_torch_conv_call(original, depthwise):
    """Conv2D / DepthwiseConv2D with the bias inside the convolution (oneDNN adds it in the
    kernel, and its gradient comes out of the convolution's backward) instead of a separate
    broadcast add and its gradient reduction: one pass over the activations less, each way."""
    import torch.nn.functional as F
    from keras.src.backend.torch import nn as knn
    from keras.src.backend.torch.core import convert_to_tensor

    def call(self, inputs):
        if (self.rank != 2 or self.data_format != "channels_last" or len(inputs.shape) != 4
                or self.compute_dtype != "float32" or _dtype(inputs) != "float32"
                or self.padding not in ("same", "valid") or getattr(self, "lora_enabled", False)):
            return original(self, inputs)
        x = convert_to_tensor(inputs).permute(0, 3, 1, 2)  # channels-last view, no copy
        kernel = convert_to_tensor(self.kernel)
        if depthwise:  # (kh, kw, C, d) -> (C·d, 1, kh, kw), output channel c·d + m as Keras orders it
            kh, kw, c, d = kernel.shape
            w = kernel.reshape(kh, kw, 1, c * d).permute(3, 2, 0, 1)
            groups = c
        else:
            w = kernel.permute(3, 2, 0, 1)
            if x.shape[1] % w.shape[1]:
                return original(self, inputs)
            groups = x.shape[1] // w.shape[1]
        bias = convert_to_tensor(self.bias) if self.use_bias else None
        x, strides = _unit_stride_1x1(x, w, tuple(self.strides))
        dilation = tuple(self.dilation_rate)
        if self.padding == "same":
            x, pad = knn._apply_same_padding(x, w.shape[2:], strides, "channels_first", "conv", dilation)
        else:
            pad = 0
        out = F.conv2d(x, w, bias, stride=strides, padding=pad, dilation=dilation, groups=groups).permute(0, 2, 3, 1)
        return self.activation(out) if self.activation is not None else out

    call.__wrapped__ = original
    return call


def _unit_stride_1x1(x, w, strides):
    """(x, strides) for F.conv2d: a 1×1 kernel with stride s reads only every s-th row and
    column, so it is the stride-1 conv of x[:, :, ::s, ::s] ("same" and "valid" agree: a 1×1
    kernel never pads). See the module docstring for why this is not left to oneDNN."""
    if tuple(w.shape[2:]) != (1, 1) or tuple(strides) == (1, 1):
        return x, strides
    return x[:, :, ::strides[0], ::strides[1]], (1, 1)


def _bn_torch(layer, inputs, training):
    import torch
    import torch.nn.functional as F
    from keras.src.backend.torch.core import convert_to_tensor

    x = convert_to_tensor(inputs).permute(0, 3, 1, 2)  # channels-last view, no copy
    gamma, beta = convert_to_tensor(layer.gamma), convert_to_tensor(layer.beta)
    if training:
        out, mean, invstd = torch.native_batch_norm(x, gamma, beta, None, None, True, 0.0, layer.epsilon)
        with torch.no_grad():
            variance = invstd.pow(-2) - layer.epsilon  # the biased batch variance, as Keras uses
            m = layer.momentum
            layer.moving_mean.assign(convert_to_tensor(layer.moving_mean) * m + mean * (1.0 - m))
            layer.moving_variance.assign(convert_to_tensor(layer.moving_variance) * m + variance * (1.0 - m))
    else:
        out = F.batch_norm(x, convert_to_tensor(layer.moving_mean), convert_to_tensor(layer.moving_variance),
                           gamma, beta, training=False, eps=layer.epsilon)
    return out.permute(0, 2, 3, 1)
