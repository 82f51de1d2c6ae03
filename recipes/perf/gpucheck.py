"""The GPU check behind `scripts/gpu-check.sh`: one prepared run, under 8 minutes, that says what
the GPU path does on a machine with an NVIDIA GPU and no internet, in one JSON file.

    bash scripts/gpu-check.sh                  # on the GPU machine: gpu-check.json
    bash scripts/gpu-check.sh --cpu            # the same steps on the CPU, small: the script works
    python -m recipes.perf.gpucheck --mode gpu --out gpu-check.json

What it runs:
1. `nvidia-smi` (the script prints it; its text goes into the JSON);
2. `spatialmix bench` at paper size (ConvMixer-256/8, batch 64) on every installed backend in
   float32 and in the GPU's mixed precision (mixed_bfloat16 from compute capability 8.0,
   else mixed_float16), against the PyTorch peer on the same GPU: the reference (NCHW,
   float32), channels-last, and channels-last under torch.autocast; with the input
   pipeline's rate beside the training steps';
3. per backend, one epoch of convmixer-mixing's paper-scale ConvMixer (width 128, kernel 8,
   patch 1, the grid's deepest, depth 16) on 50 000 synthetic CIFAR-shaped images (random
   uint8, through the same tf.data chain and augmentation as cifar10), batch 512, the
   reference's AdamW one-cycle schedule, in the precision `spatialmix run --scale paper`
   picks on that GPU: the epoch's seconds, images/s and the median step.

`--mode cpu` runs the same steps on the CPU, cut to fit: the bench at its `tiny` size and
one round, and the epoch at 64 images of batch 32 (the model stays full size), mixed
precision being mixed_bfloat16. The slow test tier runs it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_MODEL = {"width": 128, "depth": 16, "kernel_size": 8, "patch_size": 1}   # convmixer-mixing, paper scale
MODES = {
    "gpu": {"bench": ["--size", "paper", "--models", "convmixer", "--repeats", "3", "--budget", "240"],
            "images": 50_000, "batch": 512, "timeout": 150},
    "cpu": {"bench": ["--size", "tiny", "--repeats", "1"], "images": 64, "batch": 32, "timeout": 600},
}


def nvidia_smi():
    """nvidia-smi's text, or why there is none."""
    if shutil.which("nvidia-smi") is None:
        return None, "nvidia-smi not found (no NVIDIA driver)"
    proc = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60)
    return proc.stdout, None if proc.returncode == 0 else proc.stderr.strip()


def gpu_mixed_precision():
    """The mixed precision for the GPU nvidia-smi shows (its lowest compute capability)."""
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=60)
        capability = min(float(line) for line in proc.stdout.split())
    except (OSError, ValueError, subprocess.SubprocessError):
        return "mixed_float16"
    return "mixed_bfloat16" if capability >= 8.0 else "mixed_float16"


def train_epoch(backend, precision, images, batch):
    """One epoch of the paper-scale ConvMixer on synthetic CIFAR-shaped data (in this process,
    whose Keras runs on `backend`). Returns its numbers."""
    import numpy as np

    from recipes.core import data, runtime
    from recipes.core.tasks import StepTimer
    from recipes.core.train import make_optimizer

    settings = runtime.configure_runtime(backend)
    runtime.set_precision(precision)
    import keras

    import zoo

    tf = data._tf()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int64)
    spec = data.dataset_spec("cifar10")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(images, seed=0, reshuffle_each_iteration=True)
    ds = data._finish(tf, ds, "cifar10", spec, batch_size=batch, augment=True, seed=0, repeat=False,
                      drop_remainder=False, labelled=True, to_float=True)
    steps = -(-images // batch)
    keras.utils.set_random_seed(0)
    model = zoo.create_model("convmixer", **TRAIN_MODEL, mode="full", num_classes=10, input_shape=(32, 32, 3),
                             mean=list(spec.mean), std=list(spec.std))
    model.compile(optimizer=make_optimizer("convmixer", steps, 0.01, 0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  **runtime.compile_kwargs(backend))
    timer = StepTimer()
    start = time.perf_counter()
    history = model.fit(ds, epochs=1, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    return {"backend": backend, "precision": precision, "model": {"name": "convmixer", **TRAIN_MODEL},
            "images": images, "batch": batch, "steps": steps, "epoch_s": round(seconds, 3),
            "images_per_s": round(images / seconds, 1), "median_step_s": timer.steady(),
            "first_step_s": round(timer.seconds[0], 3) if timer.seconds else None,
            "loss": float(history.history["loss"][-1]), "logits_dtype": str(model.output.dtype),
            "optimizer": type(model.optimizer).__name__, "runtime": settings,
            "compile_kwargs": runtime.compile_kwargs(backend)}


def run(mode, out, backends=None):
    """Every step of the check; writes `out` (JSON) and returns 0 if every step worked."""
    from recipes.core.choices import installed_backends
    from recipes.core.runfolder import versions
    from recipes.perf.bench.cli import configure_parser
    from recipes.perf.bench.runner import run as run_bench

    started = time.monotonic()
    conf = MODES[mode]
    backends = backends or installed_backends()
    smi, smi_error = nvidia_smi() if mode == "gpu" else (None, "not run (--cpu)")
    mixed = gpu_mixed_precision() if mode == "gpu" else "mixed_bfloat16"
    result = {"mode": mode, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nvidia_smi": smi,
              "nvidia_smi_error": smi_error, "backends": backends, "mixed_precision": mixed,
              "versions": versions(), "errors": []}
    bench_json = out + ".bench.json"
    args = configure_parser(argparse.ArgumentParser()).parse_args(
        [*conf["bench"], "--backends", ",".join(backends), "--precision", f"float32,{mixed}",
         "--peer-channels-last", "--json", bench_json])
    print(f"== bench ({mode}): {' '.join(conf['bench'])}, backends {', '.join(backends)}, float32 and {mixed}",
          flush=True)
    code = run_bench(args)
    if code:
        result["errors"].append(f"bench exited {code}")
    if os.path.exists(bench_json):
        with open(bench_json) as f:
            result["bench"] = json.load(f)
        os.unlink(bench_json)
    result["train"] = {}
    for backend in backends:
        precision = mixed if mode == "gpu" else "float32"
        print(f"== one epoch of ConvMixer-128/16 (k8, p1) on {conf['images']} synthetic CIFAR-shaped images, "
              f"batch {conf['batch']}: {backend}, {precision}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "recipes.perf.gpucheck", "train", "--backend", backend, "--precision", precision,
             "--images", str(conf["images"]), "--batch", str(conf["batch"])],
            capture_output=True, text=True, timeout=conf["timeout"], cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
                 "PYTHONPATH": ROOT + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            result["errors"].append(f"train {backend}: exit {proc.returncode}: {proc.stderr.strip()[-1500:]}")
            continue
        entry = json.loads(lines[-1])
        result["train"][backend] = entry
        print(f"   {entry['epoch_s']:.1f} s, {entry['images_per_s']:,.0f} img/s, median step "
              f"{1000 * (entry['median_step_s'] or 0):.1f} ms ({entry['runtime'].get('device')})", flush=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(tmp, out)
    print(f"== gpu check ({mode}) done in {result['wall_s']:.0f} s: {out}"
          + (f"; {len(result['errors'])} error(s): " + " | ".join(e.splitlines()[0] for e in result["errors"])
             if result["errors"] else ""), flush=True)
    return 1 if result["errors"] else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recipes.perf.gpucheck", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="one epoch on synthetic data, in this process (KERAS_BACKEND set)")
    train.add_argument("--backend", required=True)
    train.add_argument("--precision", default="float32")
    train.add_argument("--images", type=int, default=50_000)
    train.add_argument("--batch", type=int, default=512)
    parser.add_argument("--mode", choices=sorted(MODES), default="gpu")
    parser.add_argument("--out", default="gpu-check.json")
    parser.add_argument("--backends", default=None, help="comma-separated (default: every installed one)")
    args = parser.parse_args(argv)
    if args.command == "train":
        print(json.dumps(train_epoch(args.backend, args.precision, args.images, args.batch), default=str))
        return 0
    return run(args.mode, args.out, args.backends.split(",") if args.backends else None)


if __name__ == "__main__":
    sys.exit(main())
