"""FGSM and PGD on the PyTorch backend: cleverhans 4.0.0's `cleverhans.torch.attacks`.

Called through recipes.core.attacks (see there for the conventions). `sanity_checks=False`:
cleverhans's checks compare a Keras-wrapped tensor with Python floats and fail. Its loss is
`torch.nn.CrossEntropyLoss` (batch mean) against the labels given; the mean only scales the
gradient, its sign is the same. The weight gradients that its `loss.backward()` leaves
behind are cleared (Keras's torch trainer also zeroes them before each step).
"""

import numpy as np
import torch
from cleverhans.torch.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.torch.attacks.projected_gradient_descent import projected_gradient_descent


def _model_fn(model):
    return lambda t: model(t, training=False)


def _tensors(x, y):
    from keras.src.backend.torch.core import get_device

    device = get_device()
    return torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)


def _clear_weight_grads(model):
    for v in model.trainable_variables:
        value = getattr(v, "value", None)
        if isinstance(value, torch.Tensor) and value.grad is not None:
            value.grad = None


def fgsm(model, x, y, eps, clip):
    xt, yt = _tensors(x, y)
    adv = fast_gradient_method(_model_fn(model), xt, eps, np.inf, clip_min=clip[0], clip_max=clip[1], y=yt,
                               sanity_checks=False)
    _clear_weight_grads(model)
    return adv.detach().cpu().numpy()


def pgd(model, x, y, eps, eps_iter, nb_iter, clip):
    xt, yt = _tensors(x, y)
    adv = projected_gradient_descent(_model_fn(model), xt, eps, eps_iter, nb_iter, np.inf, clip_min=clip[0],
                                     clip_max=clip[1], y=yt, rand_init=False, sanity_checks=False)
    _clear_weight_grads(model)
    return adv.detach().cpu().numpy()
