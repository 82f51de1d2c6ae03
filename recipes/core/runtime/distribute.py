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

One device is refused in one line, on every backend: a CPU-only machine is one device to
TensorFlow and JAX, and a run on it already trains on every core. Logical devices split
from one CPU share its cores: they would add an all-reduce per step and make BatchNorm's
statistics per replica, and add no compute. To try data-parallel code on a CPU anyway, split it yourself:
JAX with XLA_FLAGS=--xla_force_host_platform_device_count=2, TensorFlow with
`tf.config.set_logical_device_configuration` before its first op (tests/test_distribute.py
does both).

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
    """The devices a data-parallel run would use (two or more; one is a one-line error)."""
    import keras

    backend = keras.backend.backend()
    check_backend(backend)
    if backend == "jax":
        if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") and not _INITIALIZED:
            keras.distribution.initialize()  # multi-host: reads the KERAS_DISTRIBUTION_* variables
            _INITIALIZED.append(True)
        found = list(keras.distribution.list_devices())
        split = "XLA_FLAGS=--xla_force_host_platform_device_count=2"
    else:
        import tensorflow as tf

        found = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
        split = "tf.config.set_logical_device_configuration before TensorFlow's first op"
    if len(found) < 2:
        raise SpatialmixError(f"--distribute needs two or more devices; {backend} sees one ({found[0] if found else 'none'}). "
                              f"On a CPU a run already trains on every core: drop --distribute (to try data-parallel "
                              f"code on a CPU anyway, split it into devices: {split})")
    return found


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
