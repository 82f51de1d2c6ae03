"""The cell task of the attack recipes: train a zoo classifier (standard or FGSM adversarial
training), then measure its accuracy clean and under FGSM and PGD over a list of ε.

    metrics = train_and_attack(cell, "convmixer", config, family="convmixer",
                               eps255=(1, 2, 4), adversarial_eps255=None, data_options={"standardize": 0})

ε is given in units of 1/255 (paper A: ε = 1/255) and applies to images in [0, 1]; the
models normalise inside. The results row gets `test_accuracy` (clean, over the whole test
split) and one column per attack and ε: `fgsm_eps2` is the accuracy under FGSM with
ε = 2/255, `pgd_eps2` under PGD (`nb_iter` steps, step size ε, no random start; see
recipes.core.attacks). The attacks run on the budget's `attack_examples` test images (a
fixed random subset, the same for every cell) or on all of them; `attacked_clean_accuracy`
is those images' clean accuracy, the ε = 0 point of their curves.

Standard training is `model.fit` with per-epoch checkpoints (recipes.core.train); FGSM
adversarial training replaces every training batch by its FGSM images against the current
weights (paper A §4.3.1) and also checkpoints every epoch, so both resume after a crash.
"""

import os
import time

from recipes.core import attacks, data


def eps_column(attack, eps255):
    return f"{attack}_eps{eps255:g}"


def attack_subset(x, y, size):
    """A fixed random `size` of the (x, y) test arrays, in their order; all of them if `size` is
    None or not smaller. Random, not the first `size`: the embedded test splits are stored by class."""
    import numpy as np

    if not size or size >= len(x):
        return x, y
    keep = np.sort(np.random.default_rng(0).choice(len(x), size=int(size), replace=False))
    return x[keep], y[keep]


def train_and_attack(cell, model_name, model_config, family, *, eps255, attack_names=("fgsm", "pgd"), nb_iter=2,
                     adversarial_eps255=None, data_options=None):
    import numpy as np

    import zoo
    from recipes.core.tasks import classifier_setup
    from recipes.core.train import evaluate, export_plain, fit_resumable

    adversarial = adversarial_eps255 is not None
    run = classifier_setup(cell, model_name, model_config, family, dataset_options=data_options, repeat=adversarial)
    budget, batch, steps, epochs, train, test = cell.budget, run.batch, run.steps, run.epochs, run.train, run.test
    build, compile_model, spec, opts = run.build, run.compile_model, run.spec, run.options

    rates = []

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    t0 = time.time()
    if adversarial:
        model = _fit_fgsm_resumable(build, compile_model, train, epochs, steps, cell.dir, adversarial_eps255 / 255,
                                    on_epoch, steps * batch)
    else:
        model, _ = fit_resumable(build, compile_model, train, None, epochs, budget.get("steps_per_epoch"),
                                 cell.dir, on_epoch=on_epoch, samples_per_epoch=steps * batch)
    train_s = time.time() - t0
    test_metrics = evaluate(model, test)
    export_plain(model, os.path.join(cell.dir, "model.keras"))

    t0 = time.time()
    subset = budget.get("attack_examples")
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
            out[eps_column(name, e)] = round(attacks.robust_accuracy(model, test_data, name, e / 255,
                                                                     nb_iter=nb_iter), 6)
    counts = zoo.count_params(model)
    out.update({
        "params_trainable": counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"],
        "params_frozen": counts["spatial_frozen"] + counts["channel_frozen"] + counts["other_frozen"],
        "samples_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "epochs": epochs,
        "train_s": round(train_s, 2),
        "attack_s": round(time.time() - t0, 2),
        "attack_examples": int(len(test_data[1])) if isinstance(test_data, tuple) else subset,
    })
    return out


def _fit_fgsm_resumable(build, compile_model, train, epochs, steps, cell_dir, eps, on_epoch, samples_per_epoch):
    """FGSM adversarial training for `epochs` of `steps` batches, a checkpoint after every epoch."""
    from recipes.core.train import checkpoints, load_or_build

    model, done = load_or_build(build, compile_model, cell_dir)
    batches = train.as_numpy_iterator()
    for epoch in range(done, epochs):
        t0 = time.perf_counter()
        logs = attacks.fit_fgsm(model, (next(batches) for _ in range(steps)), eps)
        seconds = time.perf_counter() - t0
        final = os.path.join(cell_dir, f"epoch-{epoch + 1:04d}.keras")
        tmp = os.path.join(cell_dir, f".tmp-epoch-{epoch + 1:04d}.keras")
        model.save(tmp)
        os.replace(tmp, final)
        for old in checkpoints(cell_dir)[:-1]:
            os.unlink(old)
        on_epoch(epoch + 1, logs, samples_per_epoch / seconds if seconds > 0 else None, seconds)
    return model
