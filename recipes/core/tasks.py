"""What a cell does, for the common kinds of experiment: train a zoo classifier and test it."""

import os

import keras
import numpy as np

import zoo
from recipes.core import data
from recipes.perf import speed
from recipes.core.train import evaluate, export_plain, fit_resumable, make_optimizer


def train_classifier(cell, model_name, model_config, family, validate=True):
    """Build `model_name` for the cell's dataset, train it with the `family` schedule on the
    cell's budget (resuming if interrupted), test it, and save the plain `model.keras`.

    Returns the results-row metrics: test accuracy/loss, final train accuracy/loss,
    parameter counts by role, and training samples/s.

    `validate=False` skips the per-epoch pass over the test split, so an epoch's seconds are
    training alone, and adds `train_s_per_epoch` (median over the epochs after the first,
    which carries the warm-up; the only one if there is one) and `train_s_first_epoch`.
    The budget may name `milestones` (fractions of training) for the `resnet` step decay.
    """
    budget = cell.budget
    spec = data.dataset_spec(cell.dataset)
    batch = budget["batch_size"]
    train = data.load_dataset(cell.dataset, "train", batch_size=batch, seed=cell.seed,
                              augment=budget.get("augment", False), data_dir=cell.data_dir,
                              repeat=bool(budget.get("steps_per_epoch")))
    test = data.load_dataset(cell.dataset, "test", batch_size=max(batch, 256), data_dir=cell.data_dir)
    steps = budget.get("steps_per_epoch") or -(-data.num_examples(cell.dataset, "train", data_dir=cell.data_dir) // batch)
    epochs = budget["epochs"]
    config = {**model_config, "num_classes": spec.num_classes, "input_shape": spec.image_shape,
              "mean": list(spec.mean), "std": list(spec.std), "seed": cell.seed}

    def build():
        return zoo.create_model(model_name, **config)

    def compile_model(model):
        extra = {"milestones": tuple(budget["milestones"])} if "milestones" in budget else {}
        model.compile(optimizer=make_optimizer(family, steps * epochs, budget["lr"], budget["weight_decay"], **extra),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], **speed.compile_kwargs())

    rates, seconds_per_epoch = [], []

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        seconds_per_epoch.append(seconds)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    model, _ = fit_resumable(build, compile_model, train, test if validate else None, epochs, budget.get("steps_per_epoch"),
                             cell.dir, on_epoch=on_epoch, samples_per_epoch=steps * batch)
    test_metrics = evaluate(model, test)
    export_plain(model, os.path.join(cell.dir, "model.keras"))
    counts = zoo.count_params(model)
    timing = {}
    if not validate and seconds_per_epoch:
        timed = seconds_per_epoch[1:] or seconds_per_epoch
        timing = {"train_s_per_epoch": round(float(np.median(timed)), 3),
                  "train_s_first_epoch": round(seconds_per_epoch[0], 3)}
    return {
        "test_accuracy": test_metrics["accuracy"],
        "test_loss": test_metrics["loss"],
        "params_trainable": counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"],
        "params_frozen": counts["spatial_frozen"] + counts["channel_frozen"] + counts["other_frozen"],
        **{f"params_{k}": v for k, v in counts.items()},
        "samples_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "epochs": epochs,
        **timing,
    }
