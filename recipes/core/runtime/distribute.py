"""`spatialmix run ... --distribute`: data-parallel training on an existing distributed engine.

- JAX: Keras's own distribution API, `keras.distribution.DataParallel` over every device
  `keras.distribution.list_devices()` reports. Variables are replicated; every batch is
  split along its first axis across the devices, and the step is one jitted program, so
  the gradients (and BatchNorm's batch statistics) are those of the whole batch.
  Multi-host: set KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and
  KERAS_DISTRIBUTION_PROCESS_ID on every host; `devices()` then calls
  `keras.distribution.initialize()` once, before it lists the devices of all hosts.
- TensorFlow: `tf.distribute.MirroredStrategy` over the GPUs, or the (logical) CPUs if
  there is no GPU. The model is built, compiled and trained inside `strategy.scope()`;
  `fit` splits each batch between the replicas and all-reduces the gradients. BatchNorm
  statistics are per replica (Keras's `BatchNormalization(synchronized=False)` default).
- PyTorch: Keras 3 has no data-parallel API for it; `--distribute` says so and stops.

The global batch size is the recipe's; each device sees batch/devices. Make it divisible
by the number of devices.
"""

import contextlib
import os

from zoo.errors import SpatialmixError

SUPPORTED = ("jax", "tensorflow")
_INITIALIZED = []


def check_backend(backend):
    """One-line error for a backend that cannot distribute (before Keras is imported)."""
    if backend not in SUPPORTED:
        raise SpatialmixError(f"--distribute is not available on backend {backend!r}: Keras 3 has no data-parallel "
                              "training for it; use --backend jax (keras.distribution.DataParallel) or --backend "
                              "tensorflow (tf.distribute.MirroredStrategy)")


def devices():
    """The devices a data-parallel run would use, as strings."""
    import keras

    backend = keras.backend.backend()
    check_backend(backend)
    if backend == "jax":
        if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") and not _INITIALIZED:
            keras.distribution.initialize()  # multi-host: reads the KERAS_DISTRIBUTION_* variables
            _INITIALIZED.append(True)
        return list(keras.distribution.list_devices())
    import tensorflow as tf

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [d.name for d in found]


@contextlib.contextmanager
def data_parallel():
    """Everything inside (build, compile, fit, evaluate, save) runs data-parallel.
    Yields a dict describing the set-up (backend, api, devices)."""
    import keras

    backend = keras.backend.backend()
    check_backend(backend)
    names = devices()
    if backend == "jax":
        distribution = keras.distribution.DataParallel(devices=names)
        with distribution.scope():
            yield {"backend": backend, "api": "keras.distribution.DataParallel", "devices": [str(d) for d in names]}
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=names)
        with strategy.scope():
            yield {"backend": backend, "api": "tf.distribute.MirroredStrategy", "devices": names,
                   "replicas": strategy.num_replicas_in_sync}


def maybe_data_parallel(enabled):
    return data_parallel() if enabled else contextlib.nullcontext(None)
