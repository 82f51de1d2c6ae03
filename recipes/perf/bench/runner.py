"""The parent side of the bench: start the workers, interleave the rounds, collect samples."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from recipes.core.choices import BACKENDS, default_backend, installed_backends
from recipes.perf.bench.analysis import analyse
from recipes.perf.bench.config import (MODELS, MODES, PIPELINES, PRECISIONS, SIZES, VARIANTS, case_id,
                                       keras_impl, parse_list, peer_impl, plan_cases)
from recipes.perf.bench.process import WorkerProcess
from recipes.perf.bench.report import format_table


def _spawn(impl, kind, backend=None, variant=None, precision="float32"):
    argv = [sys.executable, "-m", "recipes.perf.bench.workers", kind, "--precision", precision]
    if kind == "peer" and variant:
        argv += ["--variant", variant]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the workers share one GPU: TensorFlow and JAX must not each take all of its memory up front
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
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


def run(args) -> int:
    """Run the bench; print the table; write JSON if asked. Returns the exit code."""
    if getattr(args, "nets", None):  # the recipes' nets and the step-time table
        from recipes.perf.bench.nets import run_nets

        return run_nets(args)
    started = time.monotonic()
    size = dict(SIZES[args.size])
    repeats = args.repeats if args.repeats is not None else size["repeats"]
    steps = args.steps if args.steps is not None else size["steps"]
    if args.warmup is not None:
        size["warmup"] = args.warmup
    backends = parse_list(args.backends, installed_backends(), "backend", BACKENDS)
    models = parse_list(args.models, MODELS, "model", MODELS)
    modes = parse_list(args.modes, MODES, "mode", MODES)
    variants = parse_list(args.variants, VARIANTS, "variant", VARIANTS)
    precisions = parse_list(args.precision, PRECISIONS, "precision", PRECISIONS)
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
        for precision in precisions:
            if precision != "float32":  # the peer under torch.autocast, channels-last (its fast path on a GPU)
                impls[peer_impl(precision)] = _spawn(peer_impl(precision), "peer", variant="channels_last",
                                                     precision=precision)
    for precision in precisions:
        for variant in variants:
            for backend in backends:
                name = keras_impl(backend, variant, precision)
                impls[name] = _spawn(name, "keras", backend, variant, precision)
    pipeline = _spawn("pipeline", "pipeline") if not args.no_pipeline else None

    groups = plan_cases(models, modes, want_peer)
    result = {
        "size": args.size, "config": {k: size[k] for k in ("batch", "convmixer", "sep_resnet", "warmup")},
        "precisions": precisions,
        "repeats_requested": repeats, "steps_per_sample": steps, "machine": _machine(),
        "load_before": load_before, "cpu_busy_before": busy_before,
        "default_backend": default_backend(), "implementations": {}, "cases": {}, "roof": {}, "pipeline": {},
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


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _log(args, message):
    if not args.quiet:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
