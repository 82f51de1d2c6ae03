"""Training: the two reference schedules, per-epoch checkpoints, and resume.

Schedules, chosen per model family:
- `convmixer` (locuslab/convmixer-cifar10): AdamW, weight decay, gradient clip-norm 1.0,
  learning rate set per step, piecewise-linear over [0, 2/5, 4/5, 1]·steps ->
  [0, lr_max, lr_max/20, 0].
- `resnet` (He et al. 2016b): SGD, momentum 0.9, weight decay, learning rate divided
  by 10 at 50 % and 75 % of training (the paper's 32k/48k of 64k iterations).
"""

import glob
import os
import re
import time

import keras
import numpy as np


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


def step_decay(lr, total_steps, milestones=(0.5, 0.75), factor=0.1):
    boundaries = [max(1, int(m * total_steps)) for m in milestones]
    values = [lr * factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(family, total_steps, lr, weight_decay, milestones=(0.5, 0.75)):
    if family == "convmixer":
        return keras.optimizers.AdamW(learning_rate=OneCycleLinear(lr, total_steps),
                                      weight_decay=weight_decay, clipnorm=1.0)
    if family == "resnet":
        return keras.optimizers.SGD(learning_rate=step_decay(lr, total_steps, milestones), momentum=0.9,
                                    weight_decay=weight_decay)
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


def load_or_build(build, compile_model, cell_dir):
    """The newest checkpoint in `cell_dir` (with its optimizer state) and the epochs it has
    done, or a fresh `build()` compiled by `compile_model` and 0."""
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
    model, done = load_or_build(build, compile_model, cell_dir)
    if done < epochs:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=done,
                  steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,  # the dataset shuffles
                  callbacks=[*callbacks, EpochCheckpoint(cell_dir, on_epoch, samples_per_epoch)])
    return model, done


def evaluate(model, dataset):
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {k: float(np.asarray(v)) for k, v in results.items()}
