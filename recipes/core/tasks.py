"""What a cell does, for the common kinds of experiment: train a zoo classifier and test it."""

import os
from types import SimpleNamespace

import keras
import numpy as np

import zoo
from recipes.core import data, runtime
from zoo.errors import SpatialmixError
from recipes.core.train import evaluate, export_plain, fit_resumable, make_optimizer


def classifier_setup(cell, model_name, model_config, family, *, build_model=None, dataset_options=None,
                     augment=None, repeat=False):
    """What every classifier cell sets up before training: the data (train and test splits,
    with the budget's `dataset_options` updated by `dataset_options`), the steps per epoch,
    and `build()` / `compile_model(model)` for the `family` schedule on the cell's budget.
    `repeat` makes the train split endless (for loops that draw a fixed number of batches)."""
    budget = cell.budget
    options = {**budget.get("dataset_options", {}), **(dataset_options or {})}
    spec = data.dataset_spec(cell.dataset, **options)
    batch = budget["batch_size"]
    train = data.load_dataset(cell.dataset, "train", batch_size=batch, seed=cell.seed,
                              augment=budget.get("augment", False) if augment is None else bool(augment),
                              data_dir=cell.data_dir,
                              repeat=repeat or bool(budget.get("steps_per_epoch")), **options)
    test = data.load_dataset(cell.dataset, "test", batch_size=max(batch, 256), data_dir=cell.data_dir, **options)
    steps = budget.get("steps_per_epoch") or -(-data.num_examples(cell.dataset, "train", data_dir=cell.data_dir,
                                                                   **options) // batch)
    epochs = budget["epochs"]
    config = {**model_config, "num_classes": spec.num_classes, "input_shape": spec.image_shape,
              "mean": list(spec.mean), "std": list(spec.std), "seed": cell.seed}

    def build():
        if build_model is not None:
            return build_model(model_name, config)
        return zoo.create_model(model_name, **config)

    def compile_model(model):
        extra = {"milestones": tuple(budget["milestones"])} if "milestones" in budget else {}
        model.compile(optimizer=make_optimizer(family, steps * epochs, budget["lr"], budget["weight_decay"], **extra),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], **runtime.compile_kwargs())

    return SimpleNamespace(spec=spec, options=options, batch=batch, train=train, test=test, steps=steps,
                           epochs=epochs, build=build, compile_model=compile_model)


def train_classifier(cell, model_name, model_config, family, validate=True, build_model=None, dataset_options=None,
                     augment=None):
    """Build `model_name` for the cell's dataset, train it with the `family` schedule on the
    cell's budget (resuming if interrupted), test it, and save the plain `model.keras`.

    Returns the results-row metrics: test accuracy/loss, final train accuracy/loss,
    parameter counts by role, and training samples/s.

    `validate=False` skips the per-epoch pass over the test split, so an epoch's seconds are
    training alone, and adds `train_s_per_epoch` (median over the epochs after the first,
    which carries the warm-up; the only one if there is one), `train_s_first_epoch` and the
    `steps_per_epoch` those seconds are for.
    The budget may name `milestones` (fractions of training) for the `resnet` step decay.

    Data set options (e.g. textures' `patch_size`) come from the budget's `dataset_options`
    updated by `dataset_options`. `build_model(model_name, config)` replaces
    `zoo.create_model` (e.g. a zoo model cut short or wrapped); it gets the same config.
    `augment` (True/False) overrides the budget's `augment` (a grid axis of its own).
    """
    run = classifier_setup(cell, model_name, model_config, family, build_model=build_model,
                           dataset_options=dataset_options, augment=augment)
    budget, batch, steps, epochs, train, test = cell.budget, run.batch, run.steps, run.epochs, run.train, run.test
    build, compile_model = run.build, run.compile_model

    rates, seconds_per_epoch = [], []

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        seconds_per_epoch.append(seconds)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    model, _ = fit_resumable(build, compile_model, train, test if validate else None, epochs, budget.get("steps_per_epoch"),
                             cell.dir, on_epoch=on_epoch, samples_per_epoch=steps * batch)
    test_metrics = evaluate(model, test)
    export_plain(model, os.path.join(cell.dir, "model.keras"))
    counts = _param_counts(model)
    timing = {}
    if not validate and seconds_per_epoch:
        timed = seconds_per_epoch[1:] or seconds_per_epoch
        timing = {"train_s_per_epoch": round(float(np.median(timed)), 3),
                  "train_s_first_epoch": round(seconds_per_epoch[0], 3), "steps_per_epoch": int(steps)}
    return {
        "test_accuracy": test_metrics["accuracy"],
        "test_loss": test_metrics["loss"],
        "params_trainable": sum(v for k, v in counts.items() if k.endswith("_trainable")),
        "params_frozen": sum(v for k, v in counts.items() if k.endswith("_frozen")),
        **{f"params_{k}": v for k, v in counts.items()},
        "samples_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "epochs": epochs,
        **timing,
    }


def _param_counts(model):
    """zoo.count_params (by role) for models with `*_spatial` layers; otherwise (paper B's
    families, which have no mixing modes) the learnable counts without roles: `all_trainable`,
    `all_frozen` (BN moving statistics are not parameters)."""
    try:
        return zoo.count_params(model)
    except SpatialmixError:
        def learnable(weights):
            return int(sum(np.prod(w.shape) for w in weights
                           if not w.path.endswith(("moving_mean", "moving_variance"))))

        return {"all_trainable": learnable(model.trainable_weights), "all_frozen": learnable(model.non_trainable_weights)}
