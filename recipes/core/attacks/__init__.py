"""Adversarial attacks on every backend: FGSM, PGD (ℓ∞) and FGSM adversarial training.

    from recipes.core import attacks
    x_adv = attacks.fgsm(model, x, y, eps=1 / 255)              # numpy in, numpy out
    x_adv = attacks.pgd(model, x, y, eps=1 / 255, nb_iter=2)    # paper A's PGD-2
    acc = attacks.robust_accuracy(model, x, y, "fgsm", eps)     # batched; "clean" too
    attacks.fit_fgsm(model, batches, eps)                       # one epoch of FGSM adversarial training

One public entry point (this package); the input gradient is the only backend-specific
part, one small private module per backend, loaded for Keras's backend on first use:
- tensorflow: cleverhans 4.0.0 `cleverhans.tf2.attacks` (_tensorflow.py);
- torch: cleverhans 4.0.0 `cleverhans.torch.attacks` with `sanity_checks=False`
  (_torch.py);
- jax: cleverhans's JAX attacks do not import (they need `jax.experimental.stax`), so
  _jax.py takes the input gradient with `jax.grad` over `model.stateless_call`
  and applies the step written here in `keras.ops` (`fgsm_step`, `project`).

Conventions (same on every backend, so the backends agree on one checkpoint):
- Models take images in [0, 1] and normalise inside, so ε is in pixel units and the
  adversarial image is clipped to `clip` = (0, 1) after every step.
- The loss is softmax cross-entropy of the logits against the TRUE labels `y` (not the
  model's predictions), the model runs in inference mode (`training=False`).
- FGSM: x + ε·sign(∇x L), then clipped. Pixels whose gradient is exactly 0 do not move.
- PGD: `nb_iter` FGSM steps of size `eps_iter` (default ε, so the first step is FGSM),
  each followed by projection onto the ε-ball around x and the valid range. No random
  start (cleverhans's `rand_init=False`): the attack is deterministic, as the
  cross-backend test needs. The paper uses 2 iterations ("PGD-2").
"""

import importlib

import numpy as np

ATTACKS = ("clean", "fgsm", "pgd")
CLIP = (0.0, 1.0)


def _impl():
    import keras

    return importlib.import_module(f"recipes.core.attacks._{keras.backend.backend()}")


# ----------------------------------------------------------------------------- shared step (keras.ops)


def fgsm_step(x, grad, eps, clip=CLIP):
    """x + eps·sign(grad), clipped to the valid range (keras.ops: any backend's tensors)."""
    from keras import ops

    x, grad = ops.convert_to_tensor(x), ops.convert_to_tensor(grad)
    return ops.clip(x + eps * ops.sign(grad), clip[0], clip[1])


def project(x_adv, x, eps, clip=CLIP):
    """Project `x_adv` onto the ℓ∞ ball of radius eps around `x`, then onto the valid range."""
    from keras import ops

    x_adv, x = ops.convert_to_tensor(x_adv), ops.convert_to_tensor(x)
    return ops.clip(x + ops.clip(x_adv - x, -eps, eps), clip[0], clip[1])


# ----------------------------------------------------------------------------- attacks


def _inputs(x, y):
    x = np.array(x, dtype="float32")                 # a writable copy (torch wants writable arrays)
    y = np.array(y).astype("int64").reshape(-1)
    return x, y


def _check_eps(eps, eps_iter=None, nb_iter=1):
    from zoo.errors import check

    check(eps >= 0, f"eps must be >= 0, got {eps!r}")
    check(eps_iter is None or 0 < eps_iter <= max(eps, 1e-12) or eps == 0,
          f"eps_iter must be in (0, eps], got {eps_iter!r}")
    check(isinstance(nb_iter, int) and nb_iter >= 1, f"nb_iter must be an integer >= 1, got {nb_iter!r}")


def fgsm(model, x, y, eps, clip=CLIP):
    """FGSM adversarial images for one batch (numpy float32, same shape as x)."""
    _check_eps(eps)
    x, y = _inputs(x, y)
    if eps == 0:
        return x.copy()
    return np.asarray(_impl().fgsm(model, x, y, float(eps), clip), dtype="float32")


def pgd(model, x, y, eps, nb_iter=2, eps_iter=None, clip=CLIP):
    """ℓ∞ PGD adversarial images for one batch: `nb_iter` steps of `eps_iter` (default eps)."""
    eps_iter = eps if eps_iter is None else eps_iter
    _check_eps(eps, eps_iter, nb_iter)
    x, y = _inputs(x, y)
    if eps == 0:
        return x.copy()
    return np.asarray(_impl().pgd(model, x, y, float(eps), float(eps_iter), int(nb_iter), clip), dtype="float32")


def eps_column(attack, eps255):
    """The results column of `attack` at ε = eps255/255: `fgsm_eps2`, `pgd_eps0.5`."""
    return f"{attack}_eps{eps255:g}"


def attack(model, x, y, name, eps, nb_iter=2, clip=CLIP):
    """`name` in ATTACKS: "clean" (x itself), "fgsm" or "pgd" for one batch."""
    from zoo.errors import check_choice

    check_choice("attack", name, ATTACKS)
    if name == "clean":
        return np.ascontiguousarray(x, dtype="float32")
    if name == "fgsm":
        return fgsm(model, x, y, eps, clip)
    return pgd(model, x, y, eps, nb_iter=nb_iter, clip=clip)


def predict_labels(model, x):
    import keras

    logits = model(keras.ops.convert_to_tensor(np.ascontiguousarray(x, dtype="float32")), training=False)
    return np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)


def _batches(data, batch_size):
    """(x, y) numpy batches from a tuple of arrays or from a batched tf.data dataset."""
    if isinstance(data, tuple):
        x, y = data
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
    else:
        yield from data.as_numpy_iterator()


def robust_accuracy(model, data, name, eps, nb_iter=2, batch_size=256, clip=CLIP):
    """Accuracy on `data` ((x, y) arrays or a batched tf.data dataset) under attack `name` at eps."""
    correct = total = 0
    for xb, yb in _batches(data, batch_size):
        adv = attack(model, xb, yb, name, eps, nb_iter=nb_iter, clip=clip)
        correct += int(np.sum(predict_labels(model, adv) == np.asarray(yb).reshape(-1)))
        total += len(yb)
    return correct / max(total, 1)


def fit_fgsm(model, batches, eps, clip=CLIP):
    """One pass of FGSM adversarial training over `batches` (an iterable of (x, y) numpy batches):
    each batch is replaced by its FGSM images against the current weights, then one
    `train_on_batch` step (paper A §4.3.1: "FGSM was simply applied to the training samples").
    Returns the last step's logs (loss, accuracy on the adversarial batch)."""
    logs = {}
    for xb, yb in batches:
        adv = fgsm(model, xb, yb, eps, clip)
        logs = model.train_on_batch(adv, np.asarray(yb).reshape(-1), return_dict=True)
    return {k: float(np.asarray(v)) for k, v in logs.items()}
