"""FGSM and PGD on the TensorFlow backend: cleverhans 4.0.0's `cleverhans.tf2.attacks`.

Called through recipes.core.attacks (see there for the conventions). cleverhans's loss is
`tf.nn.sparse_softmax_cross_entropy_with_logits` per example against the labels given.
"""

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent


def _model_fn(model):
    return lambda t: model(t, training=False)


def fgsm(model, x, y, eps, clip):
    adv = fast_gradient_method(_model_fn(model), tf.convert_to_tensor(x), eps, np.inf, clip_min=clip[0],
                               clip_max=clip[1], y=tf.convert_to_tensor(y), sanity_checks=False)
    return adv.numpy()


def pgd(model, x, y, eps, eps_iter, nb_iter, clip):
    adv = projected_gradient_descent(_model_fn(model), tf.convert_to_tensor(x), eps, eps_iter, nb_iter, np.inf,
                                     clip_min=clip[0], clip_max=clip[1], y=tf.convert_to_tensor(y),
                                     rand_init=False, sanity_checks=False)
    return adv.numpy()
