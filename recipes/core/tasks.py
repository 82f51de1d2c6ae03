"""What a cell does, for the common kinds of experiment:

- `train_classifier`: train a zoo classifier on the cell's data set and budget, test it.
- `train_and_attack` (the attack recipes): train a zoo classifier (standard or FGSM
  adversarial training), then measure its accuracy clean and under FGSM and PGD over a
  list of ε.

    metrics = train_classifier(cell, "convmixer", config, family="convmixer")
    metrics = train_and_attack(cell, "convmixer", config, family="convmixer",
                               eps255=(1, 2, 4), adversarial_eps255=None, data_options={"standardize": 0})

Attacks: ε is given in units of 1/255 (paper A: ε = 1/255) and applies to images in [0, 1];
the models normalise inside. The results row gets `test_accuracy` (clean, over the whole
test split) and one column per attack and ε (`attacks.eps_column`): `fgsm_eps2` is the
accuracy under FGSM with ε = 2/255, `pgd_eps2` under PGD (`nb_iter` steps, step size ε, no
random start; see recipes.core.attacks). The attacks run on the budget's `attack_examples`
test images (a fixed random subset, the same for every cell) or on all of them;
`attacked_clean_accuracy` is those images' clean accuracy, the ε = 0 point of their curves.

Two budget keys shorten a cell for a dry run (`recipes.core.dryrun`); no scale sets them:
- `test_batches`: every test pass (validation, the final test, the attacks) reads only the
  first N batches of the test split;
- `time_steps`: the row gets `train_step_s`, the median seconds of a training step after the
  first (which carries tracing and compilation; the only one if there is one), the device
  synchronised at each step's end, and `train_model`, the zoo model trained.

Standard training is `model.fit` with per-epoch checkpoints (recipes.core.train); FGSM
adversarial training replaces every training batch by its FGSM images against the current
weights (paper A §4.3.1) and also checkpoints every epoch, so both resume after a crash.
"""

import os
import statistics
import time
from types import SimpleNamespace

import keras
import numpy as np

import zoo
from recipes.core import attacks, data, runtime
from recipes.core.train import checkpoints, evaluate, export_plain, fit_resumable, load_or_build, make_optimizer
from zoo.errors import SpatialmixError


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
    test = cap_test(data.load_dataset(cell.dataset, "test", batch_size=max(batch, 256), data_dir=cell.data_dir,
                                      **options), budget)
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
    timer = StepTimer() if budget.get("time_steps") else None

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        seconds_per_epoch.append(seconds)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    model, _ = fit_resumable(build, compile_model, train, test if validate else None, epochs, budget.get("steps_per_epoch"),
                             cell.dir, on_epoch=on_epoch, samples_per_epoch=steps * batch,
                             callbacks=[timer] if timer else ())
    test_metrics = evaluate(model, test)
    export_plain(model, cell.model_path)
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
        **(timer.row(model_name) if timer else {}),
    }


def cap_test(test, budget):
    """The test split as the budget reads it: its first `test_batches` batches if the budget
    names that number (a dry run), else all of it."""
    return test.take(int(budget["test_batches"])) if budget.get("test_batches") else test


class StepTimer(keras.callbacks.Callback):
    """Seconds of each training step of `fit`. The step's logs are read back at its end, which
    waits for the device (asynchronous dispatch on GPUs and JAX), so a step's time is its own."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_train_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        keras.tree.map_structure(keras.ops.convert_to_numpy, logs or {})
        self.seconds.append(time.perf_counter() - self._t0)

    def steady(self):
        """The median step after the first (tracing, compilation, warm-up); the first if alone."""
        timed = self.seconds[1:] or self.seconds
        return round(statistics.median(timed), 6) if timed else None

    def row(self, model_name):
        return {"train_step_s": self.steady(), "train_model": model_name}


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


# ----------------------------------------------------------------------------- attack recipes


def attack_subset(x, y, size):
    """A fixed random `size` of the (x, y) test arrays, in their order; all of them if `size` is
    None or not smaller. Random, not the first `size`: the embedded test splits are stored by class."""
    if not size or size >= len(x):
        return x, y
    keep = np.sort(np.random.default_rng(0).choice(len(x), size=int(size), replace=False))
    return x[keep], y[keep]


def train_and_attack(cell, model_name, model_config, family, *, eps255, attack_names=("fgsm", "pgd"), nb_iter=2,
                     adversarial_eps255=None, data_options=None):
    """Train a zoo classifier (FGSM adversarial training at `adversarial_eps255`/255 if given),
    test it clean, then under each of `attack_names` at every ε in `eps255` (units of 1/255).
    Returns the results-row metrics (the columns are listed in this module's docstring)."""
    adversarial = adversarial_eps255 is not None
    run = classifier_setup(cell, model_name, model_config, family, dataset_options=data_options, repeat=adversarial)
    budget, batch, steps, epochs, train, test = cell.budget, run.batch, run.steps, run.epochs, run.train, run.test
    build, compile_model, spec, opts = run.build, run.compile_model, run.spec, run.options

    rates = []
    timer = StepTimer() if budget.get("time_steps") else None

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    t0 = time.time()
    if adversarial:
        model = _fit_fgsm_resumable(build, compile_model, train, epochs, steps, cell.dir, adversarial_eps255 / 255,
                                    on_epoch, steps * batch, timer)
    else:
        model, _ = fit_resumable(build, compile_model, train, None, epochs, budget.get("steps_per_epoch"),
                                 cell.dir, on_epoch=on_epoch, samples_per_epoch=steps * batch,
                                 callbacks=[timer] if timer else ())
    train_s = time.time() - t0
    test_metrics = evaluate(model, test)
    export_plain(model, cell.model_path)

    t0 = time.time()
    subset = budget.get("attack_examples")
    if budget.get("test_batches"):  # a dry run: as many images as the capped test split holds
        cap = int(budget["test_batches"]) * max(batch, 256)
        subset = min(int(subset), cap) if subset else cap
    if spec.source == "embedded":
        x, y = data.load_arrays(cell.dataset, "test", **opts)
        test_data = attack_subset(np.array(x), np.array(y), subset)
    else:
        test_data = test.unbatch().take(int(subset)).batch(batch) if subset else test
    # the attacked images' own clean accuracy: the ε = 0 point of an attack curve on a subset
    out = {"test_accuracy": test_metrics["accuracy"], "test_loss": test_metrics["loss"],
           "attacked_clean_accuracy": round(attacks.robust_accuracy(model, test_data, "clean", 0.0), 6)}
    for name in attack_names:
        for e in eps255:
            accuracy = attacks.robust_accuracy(model, test_data, name, e / 255, nb_iter=nb_iter)
            out[attacks.eps_column(name, e)] = round(accuracy, 6)
    counts = zoo.count_params(model)
    out.update({
        "params_trainable": counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"],
        "params_frozen": counts["spatial_frozen"] + counts["channel_frozen"] + counts["other_frozen"],
        "samples_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "epochs": epochs,
        "train_s": round(train_s, 2),
        "attack_s": round(time.time() - t0, 2),
        "attack_examples": int(len(test_data[1])) if isinstance(test_data, tuple) else subset,
        **(timer.row(model_name) if timer else {}),
    })
    return out


def _fit_fgsm_resumable(build, compile_model, train, epochs, steps, cell_dir, eps, on_epoch, samples_per_epoch,
                        timer=None):
    """FGSM adversarial training for `epochs` of `steps` batches, a checkpoint after every epoch
    (`timer`: a StepTimer that gets each step's seconds, attack included)."""
    model, done = load_or_build(build, compile_model, cell_dir)
    batches = train.as_numpy_iterator()
    for epoch in range(done, epochs):
        t0 = time.perf_counter()
        for _ in range(steps):
            xy = next(batches)
            t_step = time.perf_counter()
            logs = attacks.fit_fgsm(model, [xy], eps)   # numpy logs: the step has finished
            if timer is not None:
                timer.seconds.append(time.perf_counter() - t_step)
        seconds = time.perf_counter() - t0
        final = os.path.join(cell_dir, f"epoch-{epoch + 1:04d}.keras")
        tmp = os.path.join(cell_dir, f".tmp-epoch-{epoch + 1:04d}.keras")
        model.save(tmp)
        os.replace(tmp, final)
        for old in checkpoints(cell_dir)[:-1]:
            os.unlink(old)
        on_epoch(epoch + 1, logs, samples_per_epoch / seconds if seconds > 0 else None, seconds)
    return model
