"""The bench's worker processes: one per Keras backend (and variant), one for the PyTorch peer,
one for the input pipeline. Each builds and warms up its cases, then serves timing requests
(one JSON line in, one JSON line out) until `quit`.

Started only by the bench itself (`python -m recipes.perf.bench.workers KIND ...`): these
options are not part of `spatialmix bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

from recipes.core.choices import BACKENDS
from recipes.core.runfolder import jsonable, versions
from recipes.perf.bench.config import ZOO_NAMES
from recipes.perf.flops import keras_layer_flops, torch_layer_flops, train_flops


def _worker_main(args):
    """Serve requests (one JSON line in, one JSON line out) until `quit` or end of input."""
    import faulthandler

    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    faulthandler.enable()  # a stuck worker stopped with SIGABRT leaves its stacks on stderr
    kind = args.worker
    if kind == "keras":
        worker = KerasWorker(args.backend, args.variant, args.precision)
    elif kind == "peer":
        worker = PeerWorker(channels_last=args.variant == "channels_last", precision=args.precision)
    else:
        worker = PipelineWorker()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            result = getattr(worker, "op_" + request["op"])(**request.get("args", {}))
            answer = {"ok": True, "result": result}
        except Exception:  # report, keep serving: one broken case must not sink the run
            answer = {"ok": False, "error": traceback.format_exc()}
        reply.write(json.dumps(answer) + "\n")
    return 0


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _numpy_roof(n, repeats=3):
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    return 2 * n**3 / _median_time(lambda: a @ a, repeats) / 1e9


class _Worker:
    cases: dict

    def _register(self, case, fn, kind, start, flops, params, trainable_params, warmup):
        """Time `fn`'s first call (tracing/compilation), warm it up, keep it for op_time and
        return the case's info (`start`: perf_counter before the model was built)."""
        built = time.perf_counter()
        fn()
        first = time.perf_counter()
        for _ in range(warmup):
            fn()
        self.cases[case["id"]] = fn
        forward, train = flops
        return {"build_s": built - start, "first_call_s": first - built,
                "flops": train if kind == "train" else forward, "forward_flops": forward,
                "params": params, "trainable_params": trainable_params}

    def op_time(self, case, steps):
        fn = self.cases[case]
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            fn()
            self._sync()
            times.append(time.perf_counter() - start)
        return times

    def _sync(self):
        """Wait for the device (the Keras workers' calls return numpy, which already waits)."""


class KerasWorker(_Worker):
    def __init__(self, backend, variant, precision="float32"):
        from recipes.core import runtime

        self.backend, self.variant = backend, variant
        self.settings = {}
        if variant == "fast":
            self.settings = runtime.configure_runtime(backend)
            self.compile_kwargs = runtime.compile_kwargs(backend)
        else:  # stock Keras: its own compile defaults, on the device it finds
            self.settings = {"device": runtime.device_kind(backend)}
            self.compile_kwargs = {}
        self.settings["precision"] = runtime.set_precision(precision)
        import keras

        assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
        self.keras = keras
        self.cases = {}

    def op_setup(self, size, cases):
        import numpy as np

        import zoo

        keras = self.keras
        info = {}
        rng = np.random.default_rng(0)
        for case in cases:
            name, mode, kind = case["model"], case["mode"], case["kind"]
            config = dict(size[name], input_shape=tuple(size[name]["input_shape"]))
            batch = size["batch"]
            x = rng.random((batch, *config["input_shape"]), dtype=np.float32)
            y = rng.integers(0, config["num_classes"], batch).astype("int32")
            start = time.perf_counter()
            keras.utils.set_random_seed(0)
            model = zoo.create_model(ZOO_NAMES[name], mode=mode, **config)
            model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **self.compile_kwargs)
            if kind == "train":
                fn = (lambda m, a, b: lambda: m.train_on_batch(a, b))(model, x, y)
            else:
                fn = (lambda m, a: lambda: m.predict_on_batch(a))(model, x)
            counts = zoo.count_params(model)
            info[case["id"]] = self._register(
                case, fn, kind, start, train_flops(keras_layer_flops(model, batch)), sum(counts.values()),
                sum(v for k, v in counts.items() if k.endswith("_trainable")), size["warmup"])
        return {"cases": info, "versions": self._versions(), "settings": jsonable(self.settings),
                "compile_kwargs": jsonable(self.compile_kwargs)}

    def _versions(self):
        return versions()

    def op_roof(self, n):
        import numpy as np

        a = np.random.default_rng(0).random((n, n), dtype=np.float32)
        if self.backend == "tensorflow":
            import tensorflow as tf

            t = tf.constant(a)
            fn = lambda: tf.linalg.matmul(t, t).numpy()  # noqa: E731
        elif self.backend == "jax":
            import jax.numpy as jnp

            t = jnp.asarray(a)
            fn = lambda: (t @ t).block_until_ready()  # noqa: E731
        else:
            import torch

            t = torch.from_numpy(a).to(_torch_device(torch))
            fn = lambda: _torch_sync(torch, torch.mm(t, t))  # noqa: E731
        fn()
        return {"gflops": 2 * n**3 / _median_time(fn, 3) / 1e9, "numpy_gflops": _numpy_roof(n)}


def _torch_device(torch):
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _torch_sync(torch, value=None):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value


class PeerWorker(_Worker):
    """The plain PyTorch ConvMixer on the GPU if there is one (else the CPU); `channels_last`
    uses PyTorch's NHWC memory format; a mixed `precision` runs the forward pass and the loss
    under `torch.autocast` in its 16-bit type (float16 with a GradScaler)."""

    def __init__(self, channels_last=False, precision="float32"):
        import torch

        self.torch = torch
        self.channels_last = channels_last
        self.precision = precision
        self.device = _torch_device(torch)
        if self.device.type == "cuda":  # as recipes.core.runtime chooses for torch on a GPU
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")
        self.cases = {}

    def _sync(self):
        _torch_sync(self.torch)

    def op_setup(self, size, cases):
        import numpy as np

        from recipes.perf import torch_peer

        torch = self.torch
        info = {}
        rng = np.random.default_rng(0)
        config = size["convmixer"]
        batch = size["batch"]
        for case in cases:
            mode, kind = case["mode"], case["kind"]
            x = rng.random((batch, *config["input_shape"]), dtype=np.float32)
            y = rng.integers(0, config["num_classes"], batch)
            start = time.perf_counter()
            torch.manual_seed(0)
            net = torch_peer.convmixer(config["width"], config["depth"], config["kernel_size"],
                                       config["patch_size"], config["num_classes"], config["input_shape"][2])
            torch_peer.init_spatial_uniform(net)
            torch_peer.set_mode(net, mode)
            xt, yt = torch_peer.from_nhwc(x), torch.as_tensor(y).long()
            flop_count = train_flops(torch_layer_flops(net, xt))   # counted on the CPU copy, before it moves
            net, xt, yt = net.to(self.device), xt.to(self.device), yt.to(self.device)
            if self.channels_last:  # not the reference code: PyTorch's NHWC memory format
                net = net.to(memory_format=torch.channels_last)
                xt = xt.contiguous(memory_format=torch.channels_last)
            autocast = torch_peer.AUTOCAST.get(self.precision)
            if kind == "train":
                net.train()
                step = torch_peer.make_train_step(net, torch_peer.make_optimizer(net), autocast=autocast)
                fn = (lambda s, a, b: lambda: s(a, b))(step, xt, yt)
            else:
                net.eval()

                def fn(net=net, xt=xt, autocast=autocast):
                    with torch.no_grad(), torch.autocast(xt.device.type, dtype=autocast, enabled=autocast is not None):
                        return net(xt)
            info[case["id"]] = self._register(
                case, fn, kind, start, flop_count, torch_peer.count_params(net),
                torch_peer.count_params(net, trainable_only=True), size["warmup"])
        return {"cases": info, "versions": versions(),
                "settings": {"torch_threads": torch.get_num_threads(), "channels_last": self.channels_last,
                             "device": "gpu" if self.device.type == "cuda" else "cpu", "precision": self.precision,
                             **({"gpus": [torch.cuda.get_device_name(0)]} if self.device.type == "cuda" else {})},
                "compile_kwargs": {}}

    def _register(self, case, fn, kind, start, flops, params, trainable_params, warmup):
        torch = self.torch

        def synced(fn=fn):
            return _torch_sync(torch, fn())

        return super()._register(case, synced, kind, start, flops, params, trainable_params, warmup)

    def op_roof(self, n):
        import numpy as np

        torch = self.torch
        t = torch.from_numpy(np.random.default_rng(0).random((n, n), dtype=np.float32)).to(self.device)
        torch.mm(t, t)

        def matmul():
            return _torch_sync(torch, torch.mm(t, t))

        return {"gflops": 2 * n**3 / _median_time(matmul, 3) / 1e9, "numpy_gflops": _numpy_roof(n)}


class PipelineWorker:
    """The input pipeline of `recipes.data`, on the data sets the recipes use."""

    def __init__(self):
        from recipes.core import data

        self.data = data
        self.tf = data._tf()
        self.datasets = {}

    def op_setup(self, size, cases):
        import numpy as np

        data, tf = self.data, self.tf
        batch = size["batch"]
        self.datasets["digits"] = data.load_dataset("digits", "train", batch_size=batch, repeat=True)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 10_000).astype(np.int64)
        spec = data.dataset_spec("cifar10")
        for augment in (False, True):
            # what load_dataset builds for cifar10 (decoded uint8 cached in memory, shuffled, then
            # repeat/batch/convert/prefetch), with the TFDS reader replaced by in-memory arrays
            ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
            ds = ds.shuffle(10_000, seed=0, reshuffle_each_iteration=True)
            ds = data._finish(tf, ds, "cifar10", spec, batch_size=batch, augment=augment, seed=0, repeat=True,
                              drop_remainder=False, labelled=True, to_float=True)
            self.datasets["cifar_shaped_augment" if augment else "cifar_shaped"] = ds
        self.iterators = {name: iter(ds) for name, ds in self.datasets.items()}
        for name in self.iterators:
            self.op_pipeline(name, 20)  # warm-up: fills the shuffle buffer and the cache
        return {"cases": {}, "versions": versions(), "settings": {}, "compile_kwargs": {}}

    def op_pipeline(self, name, batches):
        iterator = self.iterators[name]
        count = 0
        start = time.perf_counter()
        for _ in range(batches):
            images, _ = next(iterator)
            count += int(images.shape[0])
        return {"images_per_s": count / (time.perf_counter() - start), "images": count}

    def op_roof(self, n):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recipes.perf.bench.workers",
                                     description="one bench worker (started by spatialmix bench)")
    parser.add_argument("worker", choices=["keras", "peer", "pipeline"])
    parser.add_argument("--backend", choices=BACKENDS, default=None)
    parser.add_argument("--variant", default="fast")
    parser.add_argument("--precision", default="float32")
    return _worker_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
