"""`spatialmix tune`: KerasTuner searches over a zoo family's width, depth and kernel size
(and the ConvMixer's patch size) in one fixed mixing mode.

    spatialmix tune convmixer --mode chans --dataset textures --max-trials 4
    spatialmix tune sep_resnet_cifar --mode full --tuner hyperband --max-params 20000

Every trial is one cell of a run folder under the recipes' contract
(`<runs-dir>/tune-<family>/<scale>-<dataset>-<mode>-<tuner>/`): a results.csv row (its
hyper-parameters, validation and test accuracy, parameter counts by role, wall time,
status), its plain `cells/trial=<id>/model.keras`, and events in events.jsonl
(run_start, cell_start, epoch_end, cell_end, run_end). The best trial's model is copied
to `best_model.keras`; the best configuration is printed and kept in `best.json`.

Selection is honest: the objective is accuracy on a validation split held out of the
training data (seeded, stratified, 20 %); the test split is only measured and reported.

KerasTuner keeps its own project directory (`keras_tuner/` inside the run folder).
Running the same command again resumes the search from it: finished trials are not run
again. The parameter cap (`--max-params N`, on the total or `--cap trainable` count) is
applied when KerasTuner draws a configuration (drawn again until it fits), and checked
again when the model is built (a config over the cap becomes a failed trial, with a row).

Distributed tuning is KerasTuner's own chief/worker mode: start the same command once with
KERASTUNER_TUNER_ID=chief (it serves the oracle and trains nothing) and once per worker
with KERASTUNER_TUNER_ID=tuner0, tuner1, ..., all with KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT naming the chief, sharing one runs dir. Workers append their rows
to the same results.csv under a file lock.
"""

import contextlib
import os
import shutil
import time

import numpy as np

from recipes.core import runfolder
from recipes.core.choices import MODES
from zoo.errors import check, check_choice

TUNERS = ("random", "hyperband", "bayesian")
CAPS = ("total", "trainable")

SCALES = {
    "smoke": {"dataset": "digits", "epochs": 2, "batch_size": 64,
              "space": {"width": [8, 16], "depth": [1, 2], "kernel_size": [3, 5], "patch_size": [1, 2]}},
    "cpu": {"dataset": "textures", "epochs": 4, "batch_size": 128,
            "space": {"width": [16, 32, 48], "depth": [1, 2, 3], "kernel_size": [3, 5, 7], "patch_size": [2, 4]}},
}
SCHEDULES = {"convmixer": {"lr": 0.01, "weight_decay": 0.01}, "resnet": {"lr": 0.1, "weight_decay": 5e-4}}
VAL_FRACTION = 0.2


def schedule_family(model):
    return "convmixer" if model.startswith("convmixer") else "resnet"


def search_space(family, scale):
    """{hyper-parameter: choices} for `family` at `scale`: the keys its builder takes."""
    from zoo.registry import model_defaults

    defaults = model_defaults(family)
    space = {k: list(v) for k, v in SCALES[scale]["space"].items() if k in defaults}
    check(space, f"model {family!r} has no width, depth, kernel_size or patch_size to search")
    if "depth_multiplier" in defaults and "width" in space:  # separable ResNets: small widths go far
        space["width"] = [max(4, w // 4) for w in space["width"]]
    return space


def validate(family, mode, dataset, tuner, scale, max_trials, max_params, cap):
    """Every user error, before Keras loads. Returns the dataset to use."""
    from recipes.core import data
    from zoo.registry import MODELS, list_models

    check_choice("model", family, list_models())
    check_choice("mode", mode, MODES)
    check(mode in MODELS[family].modes, f"model {family!r} supports mode {', '.join(MODELS[family].modes)} only, "
                                        f"not {mode!r}")
    check_choice("tuner", tuner, TUNERS)
    check(scale in SCALES, f"tune runs at scale {' or '.join(SCALES)} (embedded data); got {scale!r}. "
                           "Paper-scale searches over TFDS datasets are not supported by tune yet")
    check_choice("cap", cap, CAPS)
    check(isinstance(max_trials, int) and max_trials >= 1, f"--max-trials must be an integer >= 1, got {max_trials!r}")
    check(max_params is None or (isinstance(max_params, int) and max_params >= 1),
          f"--max-params must be an integer >= 1, got {max_params!r}")
    dataset = dataset or SCALES[scale]["dataset"]
    spec = data.dataset_spec(dataset)
    check(spec.source == "embedded" and spec.task == "classification",
          f"tune searches classifiers on the embedded datasets (digits, digits32, textures); {dataset!r} is not one")
    check(family != "convmixer_unshuffler", "convmixer_unshuffler is not a classifier; tune searches classifiers")
    search_space(family, scale)
    return dataset


def _holdout(y, seed):
    """Stratified, seeded split of indices into (train, validation)."""
    rng = np.random.default_rng([seed, 7])
    val = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        val.extend(idx[: max(1, int(round(VAL_FRACTION * len(idx))))])
    val = np.sort(np.asarray(val))
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


def tune(family, mode, dataset=None, tuner="random", max_trials=4, scale="cpu", max_params=None, cap="total",
         runs_dir="runs", seed=0, argv=None, progress=None, epochs=None):
    """Run (or resume) a search; returns (run_dir, best) with best = {trial, config, val/test accuracy}
    (None on a distributed worker or when no trial finished)."""
    import keras
    import keras_tuner as kt

    import zoo
    from recipes.core import data
    from recipes.core.train import export_plain, make_optimizer
    from recipes.core import runtime

    dataset = validate(family, mode, dataset, tuner, scale, max_trials, max_params, cap)
    runfolder.check_writable(runs_dir)
    settings = runtime.configure_runtime(fast_ops=runtime.fast_ops_wanted())
    tf = data._tf()
    backend = keras.backend.backend()
    conf = SCALES[scale]
    epochs = epochs or conf["epochs"]
    batch = conf["batch_size"]
    space = search_space(family, scale)
    sched = schedule_family(family)
    spec = data.dataset_spec(dataset)
    folder = runfolder.RunFolder(runfolder.tune_dir_for(runs_dir, family, scale, dataset, mode, tuner))
    run_dir = folder.path
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    distributed = "KERASTUNER_ORACLE_IP" in os.environ
    is_chief = distributed and "chief" in (tuner_id or "")
    folder.create()
    folder.check_backend(backend, what="tune folder")

    x, y = (np.asarray(a) for a in data.load_arrays(dataset, "train"))
    x_test, y_test = (np.asarray(a) for a in data.load_arrays(dataset, "test"))
    idx_train, idx_val = _holdout(y, seed)
    steps = -(-len(idx_train) // batch)
    train_ds = (tf.data.Dataset.from_tensor_slices((x[idx_train], y[idx_train]))
                .shuffle(len(idx_train), seed=seed, reshuffle_each_iteration=True).batch(batch).prefetch(2))
    val_ds = tf.data.Dataset.from_tensor_slices((x[idx_val], y[idx_val])).batch(256)
    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(256)
    base = {"num_classes": spec.num_classes, "input_shape": spec.image_shape, "mean": list(spec.mean),
            "std": list(spec.std), "mode": mode, "seed": seed}

    def count(model):
        if cap == "trainable":
            return int(sum(np.prod(v.shape) for v in model.trainable_weights))
        return int(model.count_params())

    def fits(values):
        if max_params is None:
            return True
        keras.utils.clear_session()
        return count(zoo.create_model(family, **base, **{k: values[k] for k in space})) <= max_params

    class HyperModel(kt.HyperModel):
        def build(self, hp):
            config = {k: hp.Choice(k, v) for k, v in space.items()}
            model = zoo.create_model(family, **base, **config)
            if max_params is not None and count(model) > max_params:
                raise kt.errors.FailedTrialError(f"{count(model)} {cap} parameters > --max-params {max_params}")
            total = steps * (hp.values.get("tuner/epochs") or epochs)
            model.compile(optimizer=make_optimizer(sched, total, **SCHEDULES[sched]),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"], **runtime.compile_kwargs())
            return model

    log = folder.event_log(listener=progress)

    class EpochEvents(keras.callbacks.Callback):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.t0
            log.emit("epoch_end", cell=self.cell, epoch=epoch + 1, epochs=self.params.get("epochs", epochs),
                        metrics={k: float(v) for k, v in (logs or {}).items()},
                        samples_per_s=round(len(idx_train) / seconds, 1), seconds=round(seconds, 3))

    class RunFolderMixin:
        """Writes each trial into the run folder as a cell."""

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            self._t0 = time.time()
            log.emit("cell_start", cell=_cell(trial), index=int(trial.trial_id) + 1, cells_total=max_trials,
                        config=dict(trial.hyperparameters.values), epochs=epochs, resumed_from_epoch=0,
                        tuner_id=self.tuner_id)

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # KerasTuner imports tensorboard on TensorFlow even with no TensorBoard callback
            if any(type(c).__name__ == "TensorBoard" for c in callbacks):
                super()._configure_tensorboard_dir(callbacks, trial, execution)

        def _build_and_fit_model(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            keras.utils.set_random_seed(seed)
            model = self._try_build(hp)
            kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [EpochEvents(_cell(trial))]
            self.hypermodel.fit(hp, model, *args, **kwargs)
            val = model.evaluate(val_ds, verbose=0, return_dict=True)
            test = model.evaluate(test_ds, verbose=0, return_dict=True)
            folder.cell_dir(_cell(trial), create=True)
            export_plain(model, folder.cell_model(_cell(trial)))
            counts = zoo.count_params(model)
            trial_metrics = {"val_accuracy": float(val["accuracy"]), "val_loss": float(val["loss"])}
            self._row = {
                "status": "completed", **trial_metrics,
                "test_accuracy": float(test["accuracy"]), "test_loss": float(test["loss"]),
                "params_total": int(model.count_params()),
                "params_trainable": counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"],
                "params_frozen": counts["spatial_frozen"] + counts["channel_frozen"] + counts["other_frozen"],
                **{f"params_{k}": v for k, v in counts.items()},
                "epochs": kwargs.get("epochs", epochs),
            }
            return trial_metrics

        def on_trial_end(self, trial):
            row = getattr(self, "_row", None) or {"status": f"{str(trial.status).split('.')[-1].lower()}",
                                                  "message": _last_line(trial.message)}
            self._row = None
            values = dict(trial.hyperparameters.values)
            full = {"cell": _cell(trial), "trial": trial.trial_id,
                    **{k: values.get(k) for k in space}, "mode": mode, "seed": seed, "dataset": dataset,
                    "scale": scale, "backend": backend, "tuner": tuner, "tuner_id": self.tuner_id,
                    **{k: v for k, v in values.items() if k.startswith("tuner/")},
                    **row, "wall_s": round(time.time() - self._t0, 2)}
            super().on_trial_end(trial)  # the oracle records the trial first: a crash after it reruns nothing
            folder.append_row(full)
            log.emit("cell_end", cell=_cell(trial), index=int(trial.trial_id) + 1, cells_total=max_trials,
                        metrics={k: v for k, v in row.items() if k != "message"}, wall_s=full["wall_s"])

    objective = kt.Objective("val_accuracy", direction="max")
    common = dict(hypermodel=HyperModel(), objective=objective, directory=run_dir, project_name="keras_tuner",
                  overwrite=False, seed=seed + 1,  # KerasTuner takes seed 0 as "no seed": random draws
                  max_consecutive_failed_trials=max(3, max_trials))
    if tuner == "random":
        cls, extra = kt.RandomSearch, {"max_trials": max_trials}
    elif tuner == "bayesian":
        cls, extra = kt.BayesianOptimization, {"max_trials": max_trials}
    else:
        cls, extra = kt.Hyperband, {"max_epochs": max(2, epochs), "factor": 3, "hyperband_iterations": 1}
    Tuner = type(f"RunFolder{cls.__name__}", (RunFolderMixin, cls), {})

    lock = contextlib.nullcontext() if distributed else folder.lock()
    with lock:
        _write_meta(folder, family, mode, scale, dataset, tuner, seed, backend, max_trials, max_params, cap,
                    space, epochs, argv, settings)
        search = Tuner(**common, **extra)
        if not distributed or is_chief:  # the process that owns the oracle (a worker's is a client)
            if tuner == "hyperband":  # Hyperband counts brackets, not trials: cap it at max_trials
                search.oracle.max_trials = max_trials
            draw = search.oracle._random_values

            def capped_draw():  # re-draw until the config fits the parameter cap
                for _ in range(100):
                    values = draw()
                    if values is None or fits(values):
                        return values
                return None

            search.oracle._random_values = capped_draw
        done = len(folder.rows())
        log.emit("run_start", recipe=f"tune-{family}", scale=scale, dataset=dataset, backend=backend, seed=seed,
                    cells_total=max_trials, cells_done=done, run_dir=run_dir, argv=argv,
                    tuner=tuner, mode=mode, tuner_id=tuner_id)
        t_run, status = time.time(), "failed"
        try:
            search.search(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception as e:
            log.emit("error", message=f"{type(e).__name__}: {e}", cell=None, kind="internal")
            raise
        finally:
            rows = folder.rows()
            log.emit("run_end", status=status, cells_done=len(rows), cells_total=max_trials,
                        wall_s=round(time.time() - t_run, 2))
        if distributed and not is_chief:
            return run_dir, None
        return run_dir, _save_best(search, folder, space)


def _save_best(search, folder, space):
    rows = {r["trial"]: r for r in folder.rows()}
    for trial in search.oracle.get_best_trials(len(rows) or 1):
        row = rows.get(trial.trial_id)
        source = folder.cell_model(_cell(trial))
        if row is None or row.get("status") != "completed" or not os.path.exists(source):
            continue
        best_model = folder.file(runfolder.BEST_MODEL)
        shutil.copyfile(source, runfolder.temp_path(best_model))
        os.replace(runfolder.temp_path(best_model), best_model)
        best = {"trial": trial.trial_id, "config": {k: _num(row[k]) for k in space},
                "val_accuracy": float(row["val_accuracy"]), "test_accuracy": float(row["test_accuracy"]),
                "params_total": int(row["params_total"]), "params_trainable": int(row["params_trainable"]),
                "model": best_model}
        runfolder.atomic_write_json(folder.file(runfolder.BEST_JSON), best)
        return best
    return None


def _write_meta(folder, family, mode, scale, dataset, tuner, seed, backend, max_trials, max_params, cap, space,
                epochs, argv, settings):
    if "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "chief") and folder.meta():
        return  # a distributed worker: the chief (or the first process) owns run.json
    folder.record_invocation(
        {"kind": "tune", "recipe": f"tune-{family}", "title": f"KerasTuner search over {family} ({mode})",
         "model": family, "mode": mode, "scale": scale, "dataset": dataset, "tuner": tuner, "seed": seed,
         "backend": backend, "max_trials": max_trials, "max_params": max_params, "cap": cap,
         "space": space, "epochs": epochs, "objective": "val_accuracy (held-out 20% of train)",
         "command": " ".join(argv) if argv else None},
        runfolder.invocation(argv, settings, tuner_id=os.environ.get("KERASTUNER_TUNER_ID")))


def _cell(trial):
    return f"trial={trial.trial_id}"


def _num(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return text


def _last_line(message):
    lines = [line for line in str(message or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def summary(meta, rows):
    """Text for `spatialmix results`: the trials table and the best trial."""
    import pandas as pd

    head = (f"== {meta['recipe']} · {meta['mode']} · {meta['scale']} · {meta['dataset']} · {meta['backend']} · "
            f"{meta['tuner']} · {len(rows)}/{meta['max_trials']} trials")
    if not rows:
        return head
    frame = pd.DataFrame(rows)
    keep = [c for c in ("trial", *meta["space"], "status", "val_accuracy", "test_accuracy", "params_total",
                        "params_trainable", "wall_s") if c in frame]
    done = frame[frame["status"] == "completed"] if "status" in frame else frame
    text = head + "\n" + frame[keep].to_string(index=False)
    if len(done):
        best = done.loc[done["val_accuracy"].astype(float).idxmax()]
        text += (f"\nbest: trial {best['trial']} " + ", ".join(f"{k}={best[k]}" for k in meta["space"])
                 + f" (val {100 * float(best['val_accuracy']):.1f}%, test {100 * float(best['test_accuracy']):.1f}%)")
    return text
