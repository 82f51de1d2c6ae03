"""`run --distribute`: two virtual CPU devices (XLA's forced host devices for JAX, logical
CPU devices for TensorFlow). Every training step's batch must be split across both
devices, and training must match one device within tolerance. (PyTorch's one-line refusal is
in tests/test_bad_inputs.py.)"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = textwrap.dedent("""
    import json, os, sys
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import zoo
    from recipes.core import data
    from recipes.core.runtime import distribute

    x, y = (np.asarray(a) for a in data.load_arrays("digits", "train"))
    x, y = x[:1280], y[:1280]
    xt, yt = (np.asarray(a) for a in data.load_arrays("digits", "test"))
    BATCH, EPOCHS = 64, 2
    seen = []   # per step: the per-device batch sizes and the devices

    if backend == "jax":
        from keras.src.backend.jax import trainer as jax_trainer
        original = jax_trainer._distribute_data
        def probe(batch, layouts=None):
            out = original(batch, layouts)
            images = out[0]
            if hasattr(images, "addressable_shards") and images.shape[0] == BATCH:
                seen.append([[int(s.data.shape[0]), str(s.device)] for s in images.addressable_shards])
            return out
        jax_trainer._distribute_data = probe

    def train(parallel):
        keras.utils.clear_session()
        keras.utils.set_random_seed(0)
        with (distribute.data_parallel() if parallel else __import__("contextlib").nullcontext()) as info:
            model = zoo.create_model("convmixer", width=16, depth=1, kernel_size=3, patch_size=1, num_classes=10,
                                     input_shape=(8, 8, 1), mean=0.3, std=0.37, seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
            if parallel and backend == "tensorflow":
                step = model.train_step
                def probed(batch):
                    ctx = tf.distribute.get_replica_context()
                    def note(replica, size, device):
                        seen.append([int(replica), int(size), device.numpy().decode()])
                        return 0
                    tf.py_function(note, [ctx.replica_id_in_sync_group, tf.shape(batch[0])[0],
                                          tf.constant(tf.identity(batch[0]).device or "?")], [tf.int32])
                    return step(batch)
                model.train_step = probed
            ds = data._tf().data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
            history = model.fit(ds, epochs=EPOCHS, verbose=0, shuffle=False)
            result = model.evaluate(xt, yt, batch_size=120, verbose=0, return_dict=True)
        return {"loss": [float(v) for v in history.history["loss"]], "test": {k: float(v) for k, v in result.items()},
                "info": info}

    single = train(False)
    seen.clear()
    parallel = train(True)
    print(json.dumps({"single": single, "parallel": parallel, "seen": seen,
                      "devices": [str(d) for d in distribute.devices()]}))
""")


def _probe(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "SPATIALMIX_FAST_OPS": "0"}
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_jax_data_parallel_splits_every_batch_over_two_devices_and_matches_one_device(tmp_path):
    result = _probe("jax", tmp_path)
    assert len(result["devices"]) == 2
    steps = 2 * 1280 // 64
    assert len(result["seen"]) >= steps, result["seen"][:3]
    for shards in result["seen"]:
        assert [size for size, _ in shards] == [32, 32] and len({device for _, device in shards}) == 2
    assert result["parallel"]["info"]["api"] == "keras.distribution.DataParallel"
    single, parallel = result["single"], result["parallel"]
    # one program over the global batch: the same computation, up to float summation order
    for a, b in zip(single["loss"], parallel["loss"]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (single["loss"], parallel["loss"])
    assert abs(single["test"]["accuracy"] - parallel["test"]["accuracy"]) <= 0.01


def test_tensorflow_mirrored_strategy_splits_every_batch_over_two_replicas_and_matches_one_device(tmp_path):
    result = _probe("tensorflow", tmp_path)
    assert len(result["devices"]) == 2
    assert result["parallel"]["info"]["replicas"] == 2
    steps = 2 * 1280 // 64
    seen = result["seen"]
    assert len(seen) == 2 * steps, seen[:4]
    assert sorted({replica for replica, _, _ in seen}) == [0, 1]
    assert all(size == 32 for _, size, _ in seen)
    single, parallel = result["single"], result["parallel"]
    # BatchNorm statistics are per replica (32 images, not 64): close, not identical
    assert abs(single["loss"][-1] - parallel["loss"][-1]) <= 0.15 * single["loss"][-1], (single, parallel)
    assert abs(single["test"]["accuracy"] - parallel["test"]["accuracy"]) <= 0.08, (single, parallel)


@pytest.mark.slow
def test_run_distribute_on_jax_end_to_end(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run([sys.executable, "-m", "recipes.cli", "run", "convmixer-mixing", "--scale", "smoke",
                          "--backend", "jax", "--distribute", "--quiet", "--runs-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=500)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "runs" / "convmixer-mixing" / "smoke-digits-seed0"
    meta = json.loads((run_dir / "run.json").read_text())
    assert len(meta["invocations"][-1]["runtime"]["distribute"]["devices"]) == 2
    assert len((run_dir / "results.csv").read_text().strip().splitlines()) == 1 + 3
