"""FGSM and PGD on the JAX backend: the input gradient by `jax.grad` over `model.stateless_call`.

cleverhans 4.0.0's JAX attacks do not import (they need `jax.experimental.stax`, which JAX
removed). The gradient is of the summed softmax cross-entropy against the labels given (the
sum only scales it; its sign is what the step uses), with the model in inference mode. The
step and the projection are recipes.core.attacks' `fgsm_step` / `project`, in keras.ops.
"""

import jax
import jax.numpy as jnp
import numpy as np

_GRADS = {}  # id(model) -> (model, jitted input-gradient function)


def _input_grad(model):
    cached = _GRADS.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]

    def loss(x, trainable, non_trainable, y):
        logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        logp = jax.nn.log_softmax(logits.astype("float32"), axis=-1)
        return -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=-1))

    fn = jax.jit(jax.grad(loss))
    _GRADS.clear()  # one model at a time: do not keep old models alive
    _GRADS[id(model)] = (model, fn)
    return fn


def _grad(model, x, y):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return _input_grad(model)(x, trainable, non_trainable, y)


def fgsm(model, x, y, eps, clip):
    from recipes.core.attacks import fgsm_step

    x, y = jnp.asarray(x), jnp.asarray(y, dtype="int32")
    return np.asarray(fgsm_step(x, _grad(model, x, y), eps, clip))


def pgd(model, x, y, eps, eps_iter, nb_iter, clip):
    from recipes.core.attacks import fgsm_step, project

    x, y = jnp.asarray(x), jnp.asarray(y, dtype="int32")
    adv = x
    for _ in range(nb_iter):
        adv = project(fgsm_step(adv, _grad(model, adv, y), eps_iter, clip), x, eps, clip)
    return np.asarray(adv)
