"""Pixel un-shuffling (paper A §4.4): the permutation, PSNR, and the cell task.

    from recipes.core import unshuffle
    perm = unshuffle.permutation(32, 32, seed=0)     # one bijection of the 1024 pixel positions
    x_scrambled = unshuffle.scramble(x, perm)        # the same permutation for every image
    unshuffle.psnr(prediction, x)                    # per-image PSNR in dB (peak 1), averaged
    metrics = unshuffle.train_unshuffler(cell, model_config, permutation_seed=0)

The task: one fixed random permutation σ of the pixel coordinates (seeded, the same for every
image, all channels of a pixel move together); a `convmixer_unshuffler` F is trained with
MSE to map σ(x) back to x: min_θ 1/n Σ ‖x_i − F(σ(x_i); θ)‖².

PSNR of one image is 10·log10(1 / MSE) with MSE over its pixels and channels, for images in
[0, 1] (peak 1); the prediction is clipped to [0, 1] first (the valid range). The reported
number is the mean over the test images.
"""

import os

import numpy as np


def permutation(height, width, seed):
    """A random bijection of the height·width pixel positions, fixed by `seed` (int64 array)."""
    return np.random.default_rng([seed, height, width]).permutation(height * width)


def scramble(images, perm):
    """Move pixel perm[i] of every image to position i (NHWC numpy or tf tensor)."""
    if isinstance(images, np.ndarray):
        n, h, w, c = images.shape
        return images.reshape(n, h * w, c)[:, perm].reshape(n, h, w, c)
    import tensorflow as tf

    shape = tf.shape(images)
    flat = tf.reshape(images, [shape[0], shape[1] * shape[2], shape[3]])
    return tf.reshape(tf.gather(flat, tf.constant(perm), axis=1), shape)


def unscramble(images, perm):
    """The inverse of `scramble` (numpy)."""
    return scramble(images, np.argsort(perm))


def psnr_per_image(prediction, target):
    prediction = np.clip(np.asarray(prediction, dtype=np.float64), 0.0, 1.0)
    target = np.asarray(target, dtype=np.float64)
    mse = np.mean((prediction - target) ** 2, axis=tuple(range(1, target.ndim)))
    return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))


def psnr(prediction, target):
    """Mean over images of the per-image PSNR (dB, peak 1, prediction clipped to [0, 1])."""
    return float(np.mean(psnr_per_image(prediction, target)))


def _pairs(ds, perm):
    """(scrambled, original) pairs from a dataset of images or of (images, labels): labels dropped."""
    import tensorflow as tf

    def to_pair(*element):
        x = element[0]
        return scramble(x, perm), tf.identity(x)

    return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)


def train_unshuffler(cell, model_config, *, permutation_seed, data_options=None, examples=8):
    """Train `convmixer_unshuffler` on the cell's dataset (labels ignored), test it. Data set
    options: the budget's `dataset_options` updated by `data_options`.

    Returns the results-row metrics: test PSNR and MSE, the scrambled input's PSNR (the
    do-nothing baseline), parameter counts, samples/s; saves the plain `model.keras` and
    `examples.npz` (truth / scrambled / reconstruction of the first `examples` test images)
    in the cell folder, whose path (relative to the run folder) is the row's `examples`.
    """
    import keras

    import zoo
    from recipes.core import data, runtime
    from recipes.core.tasks import StepTimer, cap_test
    from recipes.core.train import export_plain, fit_resumable, make_optimizer

    budget = cell.budget
    opts = {**budget.get("dataset_options", {}), **(data_options or {})}  # as classifier cells take them
    spec = data.dataset_spec(cell.dataset, **opts)
    h, w = spec.image_shape[:2]
    perm = permutation(h, w, permutation_seed)
    batch = budget["batch_size"]
    train = _pairs(data.load_dataset(cell.dataset, "train", batch_size=batch, seed=cell.seed,
                                     augment=budget.get("augment", False), data_dir=cell.data_dir,
                                     repeat=bool(budget.get("steps_per_epoch")), **opts), perm)
    test = _pairs(cap_test(data.load_dataset(cell.dataset, "test", batch_size=max(batch, 256), data_dir=cell.data_dir,
                                             **opts), budget), perm)
    steps = budget.get("steps_per_epoch") or -(-data.num_examples(cell.dataset, "train", data_dir=cell.data_dir,
                                                                   **opts) // batch)
    epochs = budget["epochs"]
    config = {**model_config, "input_shape": spec.image_shape, "mean": list(spec.mean), "std": list(spec.std),
              "seed": cell.seed}

    def build():
        return zoo.create_model("convmixer_unshuffler", **config)

    def compile_model(model):
        model.compile(optimizer=make_optimizer("convmixer", steps * epochs, budget["lr"], budget["weight_decay"]),
                      loss="mse", **runtime.compile_kwargs())

    rates = []
    timer = StepTimer() if budget.get("time_steps") else None   # a dry run (recipes.core.tasks)

    def on_epoch(epoch, metrics, rate, seconds):
        rates.append(rate)
        cell.report_epoch(epoch, metrics, rate, seconds, epochs)

    model, _ = fit_resumable(build, compile_model, train, None, epochs, budget.get("steps_per_epoch"), cell.dir,
                             on_epoch=on_epoch, samples_per_epoch=steps * batch, callbacks=[timer] if timer else ())
    export_plain(model, cell.model_path)

    scores, baseline, squared, count, kept = [], [], 0.0, 0, None
    for x_in, x in test.as_numpy_iterator():
        y = keras.ops.convert_to_numpy(model(x_in, training=False))
        scores.append(psnr_per_image(y, x))
        baseline.append(psnr_per_image(x_in, x))
        squared += float(np.sum((np.clip(y, 0, 1) - x) ** 2))
        count += x.size
        if kept is None:
            kept = (x[:examples], x_in[:examples], np.clip(y[:examples], 0, 1))
    path = os.path.join(cell.dir, "examples.npz")
    np.savez_compressed(path, truth=kept[0], scrambled=kept[1], reconstruction=kept[2])
    run_dir = os.path.dirname(os.path.dirname(cell.dir))
    counts = zoo.count_params(model)
    return {
        "test_psnr": round(float(np.mean(np.concatenate(scores))), 4),
        "test_mse": round(squared / max(count, 1), 6),
        "scrambled_psnr": round(float(np.mean(np.concatenate(baseline))), 4),
        "params_trainable": counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"],
        "params_frozen": counts["spatial_frozen"] + counts["channel_frozen"] + counts["other_frozen"],
        "samples_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "epochs": epochs,
        "examples": os.path.relpath(path, run_dir),
        **(timer.row("convmixer_unshuffler") if timer else {}),
    }
