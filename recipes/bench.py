"""`spatialmix bench`: training-step and inference speed of the zoo beside a plain PyTorch peer.

    spatialmix bench                          # paper size, every installed backend, table on stdout
    spatialmix bench --json bench.json        # ... and every raw number as JSON
    spatialmix bench --size tiny --repeats 1  # a seconds-long correctness smoke (CI)
    python -m recipes.bench ...               # the same without the CLI

What is timed (size `paper`): the zoo's ConvMixer-256/8 (k=5, p=2, 10 classes) and a separable
pre-activation ResNet-20 (`sep_resnet_cifar`, depth 3, width 16, d=9, k=3), batch 64 of
32×32×3, AdamW (lr 1e-3), sparse cross-entropy on logits, in every mode (full, chans, space):
- the training step: `model.train_on_batch(x, y)`, the compiled train function `fit` runs
  (forward, backward, AdamW update; `x`, `y` fixed arrays in memory);
- inference: `model.predict_on_batch(x)` (once per model: the mode does not change the
  forward pass);
- the peer: `recipes.torch_peer`, the reference ConvMixer in plain PyTorch (NCHW, eager,
  `torch.optim.AdamW`), with the stem and depthwise convs frozen (`requires_grad=False`) in
  chans and the 1×1 convs in space, exactly as the zoo's modes freeze them.

How: each implementation runs in its own subprocess (one per Keras backend, `KERAS_BACKEND`
set before keras is imported; one for the peer; one for the input pipeline) that builds and
compiles everything first and runs `--warmup` steps (excluded). Then `--repeats` rounds; in
each round every (model, mode, kind) is timed on every implementation back to back, in an
order rotated from round to round, so the workers never run at the same time and a pair
(implementation, peer) is measured within seconds. One sample = the mean of `--steps`
consecutive steps. Reported: the median over rounds and the spread (min–max); ratios to the
peer are taken round by round (pair by pair), then their median. The Keras workers apply
`recipes.speed` (what the training engine applies) unless `--variants plain` asks for the
plain Keras path (both in one run: `--variants fast,plain`).

FLOPs are counted analytically from the layer shapes: conv and dense multiply-adds × 2
(elementwise ops — BN, GELU, residual adds —, pooling and the optimizer are not counted).
Training = forward + input gradient of every layer that has a trainable layer before it
+ weight gradient of every trainable layer (each as many FLOPs as the layer's forward):
≈ 3× forward in full, less in chans/space. GFLOP/s is set against a matrix-multiply roof
measured in the same run: the best float32 2048×2048 matmul of NumPy and of every worker.

The input pipeline (`recipes.data`, tf.data) is timed on `digits` (`load_dataset`, train,
shuffled, repeated) and on CIFAR-shaped data: 10 000 random 32×32×3 uint8 images through the
same shuffle/batch/convert/prefetch chain `load_dataset` builds for `cifar10`, with and
without augmentation. Its images/s are compared with the fastest training step measured.

Goals (issue 4), checked at the end: the default backend's (`recipes.speed.default_backend`)
ConvMixer step ≤ the peer's in full and in chans; chans/full ≤ 0.65 on every backend; JAX
within 1.5× of the peer; the input pipeline ≥ 10× the model's rate. Timing depends on what
else runs: the bench records the load average before and after and warns when the machine
was busy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import time
import traceback

KERAS_BACKENDS = ("tensorflow", "jax", "torch")
MODES = ("full", "chans", "space")
MODELS = ("convmixer", "sep_resnet")
VARIANTS = ("fast", "plain")

SIZES = {
    "paper": {
        "batch": 64,
        "convmixer": {"width": 256, "depth": 8, "kernel_size": 5, "patch_size": 2, "num_classes": 10,
                      "input_shape": [32, 32, 3]},
        "sep_resnet": {"depth": 3, "width": 16, "depth_multiplier": 9, "kernel_size": 3, "num_classes": 10,
                       "input_shape": [32, 32, 3]},
        "steps": 2, "warmup": 2, "repeats": 3, "roof_n": 2048, "pipeline_batches": 300,
    },
    "tiny": {
        "batch": 8,
        "convmixer": {"width": 16, "depth": 2, "kernel_size": 3, "patch_size": 2, "num_classes": 10,
                      "input_shape": [16, 16, 3]},
        "sep_resnet": {"depth": 1, "width": 4, "depth_multiplier": 2, "kernel_size": 3, "num_classes": 10,
                       "input_shape": [16, 16, 3]},
        "steps": 1, "warmup": 1, "repeats": 1, "roof_n": 256, "pipeline_batches": 10,
    },
}
ZOO_NAMES = {"convmixer": "convmixer", "sep_resnet": "sep_resnet_cifar"}
PIPELINES = ("digits", "cifar_shaped", "cifar_shaped_augment")
GOAL_RATIO = 1.0        # default backend / peer, full and chans
GOAL_CHANS_FULL = 0.65  # chans / full step time, every backend
GOAL_JAX = 1.5          # JAX / peer
GOAL_PIPELINE = 10.0    # pipeline images/s / model images/s
WORKER_TIMEOUT = 900    # seconds for one request (a setup compiles every model)


# =========================================================================== FLOP counting


def conv_flops(out_shape, kernel_hw, in_per_group):
    """2 × multiply-adds of a conv producing `out_shape` (N, H, W, C_out)."""
    return 2 * math.prod(out_shape) * kernel_hw[0] * kernel_hw[1] * in_per_group


def train_flops(layers):
    """layers: [(forward_flops, trainable)] in topological order -> (forward, train) FLOPs.
    Train = forward + input gradient (if a trainable layer precedes) + weight gradient (if trainable)."""
    forward = sum(f for f, _ in layers)
    total, seen_trainable = forward, False
    for f, trainable in layers:
        if seen_trainable:
            total += f
        if trainable:
            total += f
            seen_trainable = True
    return forward, total


def keras_layer_flops(model, batch):
    """[(forward FLOPs, trainable)] for every conv/dense layer of a Keras model, graph order,
    plus (0, True) for every other layer with trainable weights (it makes the input gradient
    of the layers before it necessary)."""
    from keras import layers as L

    out = []
    for layer in model.layers:
        if isinstance(layer, L.DepthwiseConv2D):
            shape = (batch, *layer.output.shape[1:])
            out.append((conv_flops(shape, layer.kernel_size, 1), layer.trainable))
        elif isinstance(layer, L.Conv2D):
            shape = (batch, *layer.output.shape[1:])
            c_in = layer.input.shape[-1] // layer.groups
            out.append((conv_flops(shape, layer.kernel_size, c_in), layer.trainable))
        elif isinstance(layer, L.Dense):
            out.append((2 * batch * layer.input.shape[-1] * layer.units, layer.trainable))
        elif layer.trainable_weights:  # BN etc.: no FLOPs counted, but gradients flow back through it
            out.append((0, True))
    return out


# =========================================================================== workers


def _worker_main(args):
    """Serve requests (one JSON line in, one JSON line out) until `quit` or end of input."""
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    kind = args.worker
    if kind == "keras":
        worker = KerasWorker(args.backend, args.variant)
    elif kind == "peer":
        worker = PeerWorker(channels_last=args.variant == "channels_last")
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

    def op_time(self, case, steps):
        fn = self.cases[case]
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times


class KerasWorker(_Worker):
    def __init__(self, backend, variant):
        self.backend, self.variant = backend, variant
        self.settings = {}
        if variant == "fast":
            from recipes import speed

            self.settings = speed.configure_runtime(backend)
            self.compile_kwargs = speed.compile_kwargs(backend)
        else:
            self.compile_kwargs = {}
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
            built = time.perf_counter()
            fn()
            first = time.perf_counter()
            for _ in range(size["warmup"]):
                fn()
            self.cases[case["id"]] = fn
            forward, train = train_flops(keras_layer_flops(model, batch))
            counts = zoo.count_params(model)
            info[case["id"]] = {
                "build_s": built - start, "first_call_s": first - built,
                "flops": train if kind == "train" else forward, "forward_flops": forward,
                "params": sum(counts.values()),
                "trainable_params": sum(v for k, v in counts.items() if k.endswith("_trainable")),
            }
        return {"cases": info, "versions": self._versions(), "settings": _jsonable(self.settings),
                "compile_kwargs": _jsonable(self.compile_kwargs)}

    def _versions(self):
        import keras

        versions = {"keras": keras.__version__, "python": platform.python_version()}
        module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[self.backend]
        versions[module] = __import__(module).__version__
        return versions

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

            t = torch.from_numpy(a)
            fn = lambda: torch.mm(t, t)  # noqa: E731
        fn()
        return {"gflops": 2 * n**3 / _median_time(fn, 3) / 1e9, "numpy_gflops": _numpy_roof(n)}


class PeerWorker(_Worker):
    def __init__(self, channels_last=False):
        import torch

        self.torch = torch
        self.channels_last = channels_last
        self.cases = {}

    def op_setup(self, size, cases):
        import numpy as np

        from recipes import torch_peer

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
            if self.channels_last:  # not the reference code: PyTorch's NHWC memory format
                net = net.to(memory_format=torch.channels_last)
                xt = xt.contiguous(memory_format=torch.channels_last)
            if kind == "train":
                net.train()
                step = torch_peer.make_train_step(net, torch_peer.make_optimizer(net))
                fn = (lambda s, a, b: lambda: s(a, b))(step, xt, yt)
            else:
                net.eval()

                def fn(net=net, xt=xt):
                    with torch.no_grad():
                        return net(xt)
            built = time.perf_counter()
            fn()
            first = time.perf_counter()
            for _ in range(size["warmup"]):
                fn()
            self.cases[case["id"]] = fn
            forward, train = train_flops(torch_peer.layer_flops(net, xt))
            info[case["id"]] = {
                "build_s": built - start, "first_call_s": first - built,
                "flops": train if kind == "train" else forward, "forward_flops": forward,
                "params": torch_peer.count_params(net),
                "trainable_params": torch_peer.count_params(net, trainable_only=True),
            }
        return {"cases": info, "versions": {"torch": torch.__version__, "python": platform.python_version()},
                "settings": {"torch_threads": torch.get_num_threads(), "channels_last": self.channels_last},
                "compile_kwargs": {}}

    def op_roof(self, n):
        import numpy as np

        torch = self.torch
        t = torch.from_numpy(np.random.default_rng(0).random((n, n), dtype=np.float32))
        torch.mm(t, t)
        return {"gflops": 2 * n**3 / _median_time(lambda: torch.mm(t, t), 3) / 1e9, "numpy_gflops": _numpy_roof(n)}


class PipelineWorker:
    """The input pipeline of `recipes.data`, on the data sets the recipes use."""

    def __init__(self):
        from recipes import data

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
        return {"cases": {}, "versions": {"tensorflow": tf.__version__}, "settings": {}, "compile_kwargs": {}}

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


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


# =========================================================================== parent side


class WorkerProcess:
    """One worker subprocess: JSON lines on stdin/stdout; its stderr goes to a temporary file
    (read back only to report a failure), so a chatty worker can never block on a full pipe."""

    def __init__(self, impl, argv, env):
        import tempfile

        self.impl = impl
        self.stderr_file = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     text=True, env=env, bufsize=1)
        self.alive = True

    def request(self, op, timeout=WORKER_TIMEOUT, **args):
        self.send(op, **args)
        return self.receive(op, timeout)

    def send(self, op, **args):
        if not self.alive:
            raise RuntimeError(f"worker {self.impl} is not running")
        try:
            self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            self.proc.stdin.flush()
        except OSError as error:
            self.alive = False
            raise RuntimeError(f"worker {self.impl} died: {error}\n{self.stderr_tail()}") from error

    def receive(self, op, timeout=WORKER_TIMEOUT):
        deadline = time.monotonic() + timeout
        out_fd = self.proc.stdout.fileno()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError(f"worker {self.impl}: no answer to {op!r} within {timeout} s")
            ready, _, _ = select.select([out_fd], [], [], min(remaining, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    self.alive = False
                    raise RuntimeError(f"worker {self.impl} died (exit {self.proc.returncode}):\n{self.stderr_tail()}")
                continue
            line = self.proc.stdout.readline()
            if not line:
                self.alive = False
                self.proc.wait()
                raise RuntimeError(f"worker {self.impl} died (exit {self.proc.returncode}):\n{self.stderr_tail()}")
            answer = json.loads(line)
            if not answer["ok"]:
                raise RuntimeError(f"worker {self.impl}, {op}: {answer['error']}")
            return answer["result"]

    def stderr_tail(self, chars=3000):
        try:
            self.stderr_file.seek(0, os.SEEK_END)
            size = self.stderr_file.tell()
            self.stderr_file.seek(max(0, size - chars))
            return self.stderr_file.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def close(self):
        if self.alive and self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.alive = False
        self.stderr_file.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.alive = False


def installed_backends():
    import importlib.util

    return [b for b in KERAS_BACKENDS if importlib.util.find_spec(b) is not None]


def _spawn(impl, kind, backend=None, variant=None):
    argv = [sys.executable, "-m", "recipes.bench", "--worker", kind]
    if kind == "peer" and variant:
        argv += ["--variant", variant]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if backend:
        argv += ["--backend", backend, "--variant", variant]
        env["KERAS_BACKEND"] = backend
    return WorkerProcess(impl, argv, env)


def _machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def _cpu_busy(seconds=1.0):
    """Fraction of all CPU time that was busy over `seconds` (Linux; None elsewhere)."""
    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values[:8]), values[3] + values[4]
    try:
        t1, i1 = read()
        time.sleep(seconds)
        t2, i2 = read()
        return 1.0 - (i2 - i1) / max(1, t2 - t1)
    except (OSError, ValueError, IndexError):
        return None


def _summary(samples):
    if not samples:
        return None
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def plan_cases(models, modes, peer):
    """Groups of interleaved measurements: (model, mode, kind) -> implementations."""
    groups = []
    for model in models:
        for mode in modes:
            groups.append((model, mode, "train"))
        groups.append((model, "full", "infer"))
    return groups


def case_id(model, mode, kind):
    return f"{model}/{mode}/{kind}"


def run(args) -> int:
    """Run the bench; print the table; write JSON if asked. Returns the exit code."""
    started = time.monotonic()
    size = dict(SIZES[args.size])
    repeats = args.repeats if args.repeats is not None else size["repeats"]
    steps = args.steps if args.steps is not None else size["steps"]
    if args.warmup is not None:
        size["warmup"] = args.warmup
    backends = _parse_list(args.backends, installed_backends(), "backend", KERAS_BACKENDS) if args.backends else installed_backends()
    models = _parse_list(args.models, MODELS, "model", MODELS)
    modes = _parse_list(args.modes, MODES, "mode", MODES)
    variants = _parse_list(args.variants, VARIANTS, "variant", VARIANTS)
    want_peer = not args.no_peer and "convmixer" in models and _has("torch")

    load_before = os.getloadavg()
    busy_before = _cpu_busy()
    if busy_before is not None and busy_before > 0.25:
        print(f"warning: the CPUs were {busy_before:.0%} busy before the bench started; timings will be noisy",
              file=sys.stderr)

    impls = {}  # impl name -> WorkerProcess
    if want_peer:
        impls["peer"] = _spawn("peer", "peer")
        if args.peer_channels_last:
            impls["peer_cl"] = _spawn("peer_cl", "peer", variant="channels_last")
    for variant in variants:
        for backend in backends:
            name = backend if variant == "fast" else f"{backend}:plain"
            impls[name] = _spawn(name, "keras", backend, variant)
    pipeline = _spawn("pipeline", "pipeline") if not args.no_pipeline else None

    groups = plan_cases(models, modes, want_peer)
    result = {
        "size": args.size, "config": {k: size[k] for k in ("batch", "convmixer", "sep_resnet", "warmup")},
        "repeats_requested": repeats, "steps_per_sample": steps, "machine": _machine(),
        "load_before": load_before, "cpu_busy_before": busy_before,
        "default_backend": _default_backend(), "implementations": {}, "cases": {}, "roof": {}, "pipeline": {},
        "errors": [],
    }
    failed = set()
    try:
        # ---- set-up: build, compile, warm up; every worker at once (XLA and tf.function compile
        # mostly on one core), so the compile times reported are upper bounds
        sent = {}
        for impl, worker in impls.items():
            cases = []
            for model, mode, kind in groups:
                if impl.startswith("peer") and model != "convmixer":
                    continue
                cases.append({"id": case_id(model, mode, kind), "model": model, "mode": mode, "kind": kind})
            _log(args, f"setting up {impl} ({len(cases)} cases)")
            try:
                worker.send("setup", size=size, cases=cases)
                sent[impl] = worker
            except RuntimeError as error:
                result["errors"].append(str(error))
                failed.add(impl)
        if pipeline is not None:
            try:
                pipeline.send("setup", size=size, cases=[])
            except RuntimeError as error:
                result["errors"].append(str(error))
                pipeline = None
        for impl, worker in sent.items():
            try:
                info = worker.receive("setup")
            except RuntimeError as error:
                result["errors"].append(str(error))
                failed.add(impl)
                worker.kill()
                continue
            _log(args, f"{impl} ready")
            result["implementations"][impl] = {k: info[k] for k in ("versions", "settings", "compile_kwargs")}
            for cid, case_info in info["cases"].items():
                result["cases"].setdefault(cid, {})[impl] = {"setup": case_info, "samples": [], "raw": []}
        if pipeline is not None:
            try:
                pipeline.receive("setup")
            except RuntimeError as error:
                result["errors"].append(str(error))
                pipeline.kill()
                pipeline = None

        # ---- rounds
        rounds_done = 0
        round_seconds = None
        for r in range(repeats):
            elapsed = time.monotonic() - started
            if round_seconds is not None and elapsed + round_seconds > args.budget:
                result["errors"].append(f"stopped after {rounds_done} of {repeats} rounds: the next round would "
                                        f"pass the {args.budget:.0f} s budget")
                break
            round_start = time.monotonic()
            _log(args, f"round {r + 1}/{repeats}")
            for model, mode, kind in groups:
                cid = case_id(model, mode, kind)
                order = [i for i in impls if i not in failed and i in result["cases"].get(cid, {})]
                if not order:
                    continue
                shift = r % len(order)
                for impl in order[shift:] + order[:shift]:
                    try:
                        times = impls[impl].request("time", case=cid, steps=steps)
                    except RuntimeError as error:
                        result["errors"].append(str(error))
                        failed.add(impl)
                        continue
                    entry = result["cases"][cid][impl]
                    entry["raw"].append(times)
                    entry["samples"].append(sum(times) / len(times))
            for impl, worker in impls.items():
                if impl in failed:
                    continue
                try:
                    roof = worker.request("roof", n=size["roof_n"])
                except RuntimeError as error:
                    result["errors"].append(str(error))
                    continue
                result["roof"].setdefault(impl, []).append(roof)
            if pipeline is not None:
                for name in PIPELINES:
                    try:
                        rate = pipeline.request("pipeline", name=name, batches=size["pipeline_batches"])
                    except RuntimeError as error:
                        result["errors"].append(str(error))
                        continue
                    result["pipeline"].setdefault(name, []).append(rate["images_per_s"])
            rounds_done += 1
            round_seconds = time.monotonic() - round_start
        result["repeats_done"] = rounds_done
    finally:
        for worker in list(impls.values()) + ([pipeline] if pipeline else []):
            worker.close()

    result["load_after"] = os.getloadavg()
    result["wall_s"] = time.monotonic() - started
    analyse(result, size)
    print(format_table(result))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1, default=str)
        os.replace(tmp, args.json)
        print(f"raw numbers: {args.json}")
    if result["errors"]:
        for error in result["errors"]:
            print("error: " + error.strip().splitlines()[-1] if error.strip() else "error", file=sys.stderr)
    complete = all(entry["samples"] for impls_ in result["cases"].values() for entry in impls_.values())
    return 0 if complete and not failed and result["cases"] else 1


def _default_backend():
    try:
        from recipes import speed

        return speed.default_backend()
    except Exception:  # noqa: BLE001 - the bench still runs without a speed module
        return os.environ.get("KERAS_BACKEND", "tensorflow")


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _parse_list(text, default, what, allowed):
    if text is None:
        return list(default)
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        from zoo.errors import SpatialmixError

        raise SpatialmixError(f"unknown {what} {', '.join(bad)}; choose from: {', '.join(allowed)}")
    return items


def _log(args, message):
    if not args.quiet:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# =========================================================================== analysis and table


def analyse(result, size):
    roofs = [r["gflops"] for rs in result["roof"].values() for r in rs if r]
    roofs += [r["numpy_gflops"] for rs in result["roof"].values() for r in rs if r]
    result["roof_gflops"] = max(roofs) if roofs else None
    summary = {}
    for cid, per_impl in result["cases"].items():
        model, mode, kind = cid.split("/")
        peer = per_impl.get("peer")
        for impl, entry in per_impl.items():
            s = _summary(entry["samples"])
            if s is None:
                continue
            row = {"model": model, "mode": mode, "kind": kind, "impl": impl, "ms": {k: (v * 1000 if k != "n" else v)
                                                                                       for k, v in s.items()}}
            flops = entry["setup"]["flops"]
            row["flops"] = flops
            row["gflops_per_s"] = flops / s["median"] / 1e9
            if result["roof_gflops"]:
                row["fraction_of_roof"] = row["gflops_per_s"] / result["roof_gflops"]
            row["images_per_s"] = size["batch"] / s["median"]
            if peer is not None and impl != "peer" and peer["samples"]:
                ratios = [a / b for a, b in zip(entry["samples"], peer["samples"])]
                row["vs_peer"] = _summary(ratios)
            full = result["cases"].get(case_id(model, "full", kind), {}).get(impl)
            if kind == "train" and mode != "full" and full and full["samples"]:
                row["vs_full"] = _summary([a / b for a, b in zip(entry["samples"], full["samples"])])
            summary[f"{cid}@{impl}"] = row
    result["summary"] = summary
    result["pipeline_summary"] = {name: _summary(v) for name, v in result["pipeline"].items()}
    result["goals"] = goals(result)


def _row(result, model, mode, kind, impl):
    return result["summary"].get(f"{case_id(model, mode, kind)}@{impl}")


def goals(result):
    out = []
    default = result["default_backend"]
    for mode in ("full", "chans"):
        row = _row(result, "convmixer", mode, "train", default)
        ratio = row and row.get("vs_peer")
        out.append({"goal": f"default backend ({default}) ConvMixer {mode} step <= peer",
                    "value": ratio["median"] if ratio else None, "target": f"<= {GOAL_RATIO}",
                    "met": bool(ratio) and ratio["median"] <= GOAL_RATIO})
    impls = sorted({row["impl"] for row in result["summary"].values()})
    for impl in impls:
        row = _row(result, "convmixer", "chans", "train", impl)
        ratio = row and row.get("vs_full")
        out.append({"goal": f"ConvMixer chans/full on {impl}", "value": ratio["median"] if ratio else None,
                    "target": f"<= {GOAL_CHANS_FULL}", "met": bool(ratio) and ratio["median"] <= GOAL_CHANS_FULL})
    for mode in ("full", "chans"):
        row = _row(result, "convmixer", mode, "train", "jax")
        ratio = row and row.get("vs_peer")
        if row:
            out.append({"goal": f"JAX ConvMixer {mode} step within {GOAL_JAX}x of the peer",
                        "value": ratio["median"] if ratio else None, "target": f"<= {GOAL_JAX}",
                        "met": bool(ratio) and ratio["median"] <= GOAL_JAX})
    train_rows = [r for r in result["summary"].values() if r["kind"] == "train" and r["model"] == "convmixer"]
    cifar = result["pipeline_summary"].get("cifar_shaped_augment")
    if train_rows and cifar:
        fastest = max(r["images_per_s"] for r in train_rows)
        value = cifar["median"] / fastest
        out.append({"goal": "input pipeline (CIFAR-shaped, augmented) >= 10x the fastest ConvMixer training rate",
                    "value": value, "target": f">= {GOAL_PIPELINE}", "met": value >= GOAL_PIPELINE})
    return out


def _any_flops(result, model, mode):
    per_impl = result["cases"].get(case_id(model, mode, "train"), {})
    return next((entry["setup"]["flops"] for entry in per_impl.values()), None)


def _fmt_ratio(s):
    if not s:
        return "—"
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def format_table(result):
    lines = []
    m = result["machine"]
    lines.append(f"spatialmix bench — size {result['size']}, batch {result['config']['batch']}, "
                 f"{result.get('repeats_done', 0)} interleaved rounds × {result['steps_per_sample']} steps, "
                 f"warm-up {result['config']['warmup']}")
    lines.append(f"machine: {m['cpu']}, {m['cores']} cores; load avg before {result['load_before'][0]:.2f}, "
                 f"after {result['load_after'][0]:.2f}; wall {result['wall_s']:.0f} s")
    header = (f"{'model':<11}{'mode':<6}{'kind':<6}{'implementation':<17}{'ms median':>10}{'  (min–max)':<18}"
              f"{'× peer':<19}{'/ full':<19}{'GFLOP/s':>8}{'% roof':>7}")
    lines.append("")
    lines.append(header)
    lines.append("-" * len(header))
    order = {"peer": 0}
    rows = sorted(result["summary"].values(),
                  key=lambda r: (MODELS.index(r["model"]), r["kind"] != "train", MODES.index(r["mode"]),
                                 order.get(r["impl"], 1), r["impl"]))
    for r in rows:
        ms = r["ms"]
        roof = f"{100 * r['fraction_of_roof']:.1f}" if r.get("fraction_of_roof") is not None else "—"
        lines.append(f"{r['model']:<11}{r['mode']:<6}{r['kind']:<6}{r['impl']:<17}{ms['median']:>10.1f}"
                     f"{'  (' + format(ms['min'], '.0f') + '–' + format(ms['max'], '.0f') + ')':<18}"
                     f"{_fmt_ratio(r.get('vs_peer')):<19}{_fmt_ratio(r.get('vs_full')):<19}"
                     f"{r['gflops_per_s']:>8.1f}{roof:>7}")
    lines.append("")
    if result.get("roof_gflops"):
        per = ", ".join(f"{impl} {statistics.median(r['gflops'] for r in rs if r):.0f}"
                        for impl, rs in result["roof"].items() if any(rs))
        lines.append(f"matmul roof (float32 {SIZES[result['size']]['roof_n']}²): {result['roof_gflops']:.0f} GFLOP/s "
                     f"(best of: {per}; NumPy in each worker)")
    if result["pipeline_summary"]:
        parts = [f"{name} {s['median']:,.0f} img/s" for name, s in result["pipeline_summary"].items() if s]
        lines.append("input pipeline (tf.data, recipes.data): " + "; ".join(parts))
    for model in MODELS:
        flops = {mode: _any_flops(result, model, mode) for mode in ("full", "chans")}
        if all(flops.values()):
            lines.append(f"{model}: counted FLOPs chans/full = {flops['chans'] / flops['full']:.2f} (training step: "
                         "freezing the spatial filters only removes their weight gradient)")
    lines.append("")
    lines.append(f"goals (default backend: {result['default_backend']}):")
    for g in result["goals"]:
        value = "—" if g["value"] is None else f"{g['value']:.2f}"
        lines.append(f"  [{'met' if g['met'] else 'NOT met'}] {g['goal']}: {value} (target {g['target']})")
    if result["errors"]:
        lines.append("")
        lines.append(f"{len(result['errors'])} error(s); see stderr / JSON")
    return "\n".join(lines)


# =========================================================================== CLI


def configure_parser(parser: argparse.ArgumentParser):
    parser.add_argument("--size", choices=sorted(SIZES), default="paper",
                        help="paper: ConvMixer-256/8 (k5, p2) + sep. ResNet-20, batch 64 of 32×32×3 (default); "
                             "tiny: a seconds-long smoke")
    parser.add_argument("--backends", default=None,
                        help="comma-separated Keras backends (default: every installed one of tensorflow, jax, torch)")
    parser.add_argument("--models", default=None, help="comma-separated: convmixer, sep_resnet (default: both)")
    parser.add_argument("--modes", default=None, help="comma-separated: full, chans, space (default: all)")
    parser.add_argument("--variants", default="fast",
                        help="fast: with recipes.speed, as the training engine runs (default); plain: stock Keras; "
                             "both: fast,plain")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default: 3; tiny: 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per sample (default: 2; tiny: 1)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps after the first call (default 2)")
    parser.add_argument("--budget", type=float, default=540.0,
                        help="seconds: skip rounds that would end later than this (default 540)")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain PyTorch peer")
    parser.add_argument("--peer-channels-last", action="store_true",
                        help="also time the peer in PyTorch's channels-last memory format (row peer_cl; "
                             "for information: ratios stay against the reference NCHW peer)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline measurement")
    parser.add_argument("--json", default=None, metavar="PATH", help="write every raw number to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    # internal: one worker process
    parser.add_argument("--worker", choices=["keras", "peer", "pipeline"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fast", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = configure_parser(argparse.ArgumentParser(prog="spatialmix bench", description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_main(args)
    from zoo.errors import SpatialmixError  # light: zoo imports Keras lazily

    try:
        return run(args)
    except SpatialmixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
