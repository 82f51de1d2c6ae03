"""Training: the reference optimisers and schedules, per-epoch checkpoints, and resume.

`make_optimizer(family, total_steps, lr, weight_decay, milestones=None)`, one family per
reference recipe:
- `convmixer` (locuslab/convmixer-cifar10): AdamW (decoupled weight decay, eps 1e-8 as
  PyTorch's), the global gradient norm clipped to 1.0 (the reference's `clip_grad_norm_`),
  learning rate set per step, piecewise-linear over [0, 2/5, 4/5, 1]·steps ->
  [0, lr_max, lr_max/20, 0].
- `resnet` (He et al. 2016b; ImageNet: He et al. 2016 and torchvision's reference): SGD,
  momentum 0.9, coupled L2 weight decay, learning rate divided by 10 at `milestones`
  (default 50 % and 75 %: the paper's 32k/48k of 64k iterations).
- `cifar100` (weiaicunzai/pytorch-cifar100): the `resnet` optimiser, a linear warm-up over
  the first 1/200 of training (its one epoch of 200), then ×0.2 at 30, 60 and 80 % (its
  epochs 60, 120, 160).
- `mobilenet_v2` (torchvision's reference recipe for MobileNetV2): the `resnet` optimiser,
  learning rate ×0.98 after every 1/300 of training (its every epoch of 300).
- `squeezenet` (the SqueezeNet 1.0 authors' Caffe solver): the `resnet` optimiser,
  polynomial decay of power 0.5 to 0 over training.

The SGD families use `CoupledSGD`: PyTorch's and Caffe's weight decay, added to the gradient
before momentum. Keras's own `SGD(weight_decay=...)` shrinks the weights outside momentum
(w ← w − lr·wd·w), about 1/(1 − momentum) = 10× weaker than the coupled L2 the references'
numbers (1e-4, 5e-4) were tuned for.
"""

import contextlib
import contextvars
import glob
import os
import re
import time

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="spatialmix")
class OneCycleLinear(keras.optimizers.schedules.LearningRateSchedule):
    """The ConvMixer reference's per-step schedule: 0 -> lr_max -> lr_max/20 -> 0."""

    def __init__(self, lr_max, total_steps):
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)

    def breakpoints(self):
        t = self.total_steps
        return [0.0, 0.4 * t, 0.8 * t, float(t)], [0.0, self.lr_max, self.lr_max / 20, 0.0]

    def __call__(self, step):
        xs, ys = self.breakpoints()
        step = keras.ops.cast(step, "float32")
        lr = keras.ops.zeros_like(step)
        for (x0, x1), (y0, y1) in zip(zip(xs, xs[1:]), zip(ys, ys[1:])):
            inside = keras.ops.logical_and(step >= x0, step < x1)
            lr = keras.ops.where(inside, y0 + (y1 - y0) * (step - x0) / max(x1 - x0, 1e-9), lr)
        return lr

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="spatialmix")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """weiaicunzai/pytorch-cifar100's schedule: lr rises linearly to `lr` over the first
    `warmup_steps` (its `WarmUpLR`: lr·(step + 1)/warmup_steps), then is multiplied by
    `factor` at each of `boundaries` (its `MultiStepLR`)."""

    def __init__(self, lr, boundaries, factor, warmup_steps):
        self.lr = float(lr)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = ops.full_like(step, self.lr)
        for boundary in self.boundaries:
            lr = ops.where(step >= boundary, lr * self.factor, lr)
        if self.warmup_steps:
            lr = ops.where(step < self.warmup_steps, self.lr * (step + 1) / self.warmup_steps, lr)
        return lr

    def get_config(self):
        return {"lr": self.lr, "boundaries": self.boundaries, "factor": self.factor,
                "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="spatialmix")
class CoupledSGD(keras.optimizers.SGD):
    """SGD with momentum and coupled L2 weight decay, step for step PyTorch's
    `torch.optim.SGD(lr, momentum, weight_decay=l2)` (no dampening, no Nesterov):

        g ← g + l2·w;   buf ← momentum·buf + g;   w ← w − lr·buf

    The buffer holds gradients, not learning-rate-scaled steps (Keras's SGD keeps
    v = momentum·v − lr·g), so a learning-rate drop acts at once, as in PyTorch. The decay
    applies to every trainable variable (BN scales and biases too), as in the references."""

    def __init__(self, learning_rate=0.01, momentum=0.9, l2=0.0, **kwargs):
        if kwargs.pop("nesterov", False):
            raise ValueError("CoupledSGD has no Nesterov momentum")
        if kwargs.pop("weight_decay", None):
            raise ValueError("CoupledSGD takes its (coupled) weight decay as `l2`, not Keras's decoupled "
                             "`weight_decay`")
        super().__init__(learning_rate=learning_rate, momentum=float(momentum), nesterov=False, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        if self.momentum:
            buffer = self.momentums[self._get_variable_index(variable)]
            gradient = ops.add(ops.multiply(buffer, ops.cast(self.momentum, variable.dtype)), gradient)
            self.assign(buffer, gradient)
        self.assign_sub(variable, ops.multiply(learning_rate, gradient))

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def step_decay(lr, total_steps, milestones=(0.5, 0.75), factor=0.1):
    boundaries = [max(1, int(m * total_steps)) for m in milestones]
    values = [lr * factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def _schedule(family, total_steps, lr, milestones):
    """The learning-rate schedule of an SGD family (see the module docstring)."""
    if family == "resnet":
        return step_decay(lr, total_steps, milestones or (0.5, 0.75))
    if family == "cifar100":
        boundaries = [max(1, int(m * total_steps)) for m in (milestones or (0.3, 0.6, 0.8))]
        return WarmupStepDecay(lr, boundaries, 0.2, round(total_steps / 200))
    if family == "mobilenet_v2":
        return keras.optimizers.schedules.ExponentialDecay(lr, max(total_steps / 300, 1.0), 0.98, staircase=True)
    if family == "squeezenet":
        return keras.optimizers.schedules.PolynomialDecay(lr, max(int(total_steps), 1), end_learning_rate=0.0,
                                                          power=0.5)
    raise ValueError(f"unknown schedule family {family!r}")


SGD_FAMILIES = ("resnet", "cifar100", "mobilenet_v2", "squeezenet")
FAMILIES = ("convmixer", *SGD_FAMILIES)


def make_optimizer(family, total_steps, lr, weight_decay, milestones=None):
    """The optimiser of a reference recipe (`family`, see the module docstring) for a training
    of `total_steps` steps; `milestones` (fractions of training) moves a step family's drops."""
    if family == "convmixer":
        return keras.optimizers.AdamW(learning_rate=OneCycleLinear(lr, total_steps), weight_decay=weight_decay,
                                      epsilon=1e-8, global_clipnorm=1.0)
    if family in SGD_FAMILIES:
        return CoupledSGD(learning_rate=_schedule(family, total_steps, lr, milestones), momentum=0.9,
                          l2=weight_decay)
    raise ValueError(f"unknown schedule family {family!r}")


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state (weights + optimizer) after every epoch, atomically,
    as `epoch-NNNN.keras`, keeping only the newest; then reports the epoch."""

    def __init__(self, cell_dir, on_epoch=None, samples_per_epoch=None):
        super().__init__()
        self.cell_dir = cell_dir
        self.on_epoch = on_epoch
        self.samples_per_epoch = samples_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t0
        path = os.path.join(self.cell_dir, f"epoch-{epoch + 1:04d}.keras")
        tmp = os.path.join(self.cell_dir, f".tmp-epoch-{epoch + 1:04d}.keras")
        self.model.save(tmp)
        os.replace(tmp, path)
        for old in checkpoints(self.cell_dir)[:-1]:
            os.unlink(old)
        if self.on_epoch:
            rate = self.samples_per_epoch / seconds if self.samples_per_epoch else None
            self.on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()}, rate, seconds)


def checkpoints(cell_dir):
    return sorted(glob.glob(os.path.join(cell_dir, "epoch-*.keras")))


def last_checkpoint(cell_dir):
    """(path, epochs done) of the newest complete checkpoint, or (None, 0)."""
    found = checkpoints(cell_dir)
    if not found:
        return None, 0
    return found[-1], int(re.search(r"epoch-(\d+)\.keras$", found[-1]).group(1))


def export_plain(model, path):
    """Save the trained model without optimizer or compile state: a plain Keras
    checkpoint that `keras.models.load_model` opens with no import of this project.

    Rebuilt from the config, not cloned: a clone of a compiled model keeps its compile
    config, which names this project's learning-rate schedule (OneCycleLinear), and a plain
    `load_model` then fails with "Could not locate class 'OneCycleLinear'"."""
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    for src, dst in zip(model.layers, clean.layers):
        dst.trainable = src.trainable
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    clean.save(tmp)
    os.replace(tmp, path)


class TrainingProbe(Exception):
    """Raised where training would start while `probing_training()` is on: what the cell would
    train (`build`, `compile_model`, the train and validation sets, epochs, steps per epoch),
    so `spatialmix bench --nets` can time a recipe's nets built exactly as its cells build them.
    `train` is None for a training loop of its own (FGSM adversarial training)."""

    def __init__(self, build, compile_model, train=None, validation=None, epochs=None, steps_per_epoch=None):
        super().__init__("training probed, not run")
        self.build, self.compile_model = build, compile_model
        self.train, self.validation, self.epochs, self.steps_per_epoch = train, validation, epochs, steps_per_epoch


_PROBING = contextvars.ContextVar("spatialmix_probing_training", default=False)


@contextlib.contextmanager
def probing_training():
    """Within this block, a cell's training raises TrainingProbe instead of training."""
    token = _PROBING.set(True)
    try:
        yield
    finally:
        _PROBING.reset(token)


def load_or_build(build, compile_model, cell_dir):
    """The newest checkpoint in `cell_dir` (with its optimizer state) and the epochs it has
    done, or a fresh `build()` compiled by `compile_model` and 0."""
    if _PROBING.get():
        raise TrainingProbe(build, compile_model)
    path, done = last_checkpoint(cell_dir)
    if path:
        return keras.models.load_model(path), done
    model = build()
    compile_model(model)
    return model, 0


def fit_resumable(build, compile_model, train_ds, val_ds, epochs, steps_per_epoch, cell_dir,
                  on_epoch=None, samples_per_epoch=None, callbacks=()):
    """Train for `epochs`, resuming from the newest checkpoint in `cell_dir`.

    `build()` makes a fresh model; `compile_model(model)` compiles it (only for a fresh
    model: a checkpoint carries its optimizer state). `callbacks` go to `fit` beside the
    checkpointing one. Returns (model, resumed_from_epoch).
    """
    if _PROBING.get():
        raise TrainingProbe(build, compile_model, train_ds, val_ds, epochs, steps_per_epoch)
    model, done = load_or_build(build, compile_model, cell_dir)
    if done < epochs:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=done,
                  steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,  # the dataset shuffles
                  callbacks=[*callbacks, EpochCheckpoint(cell_dir, on_epoch, samples_per_epoch)])
    return model, done


def evaluate(model, dataset):
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {k: float(np.asarray(v)) for k, v in results.items()}
