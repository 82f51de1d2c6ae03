"""`spatialmix bench --nets cpu`: one training step of every net the cpu-scale recipes train,
built exactly as their cells build it, on every installed backend; writes the step-time
table the budget rule reads (recipes/core/steptimes.json, see recipes.core.budget).

    spatialmix bench --nets cpu                        # every recipe, every backend: the table
    spatialmix bench --nets cpu --recipes depth-strip  # one recipe (merged into the table)
    spatialmix bench --nets cpu --quick --no-table     # 1 round of 1 step, nothing written

Which nets: no list is kept here. For every recipe of the registry, every grid point of its
cpu scale (on its default data set and on each data set with a budget of its own) runs the
recipe's own `run_cell` with training probed (recipes.core.train.probing_training): the cell
loads its data and hands over its `build` and `compile_model` where training would start,
so the model, optimizer, weight decay, schedule, loss, input shape and batch are the
recipe's, and the backend's fast ops are on as in `spatialmix run`. A cell that never
reaches training (spectral-envelope) trains no net. Nets are told apart by their
architecture, trainable flags, optimizer (without its learning rate) and batch, so a net
several recipes train is timed once.

How: one worker process per backend (KERAS_BACKEND set before Keras loads). Set-up runs one
worker at a time, so the build, first-step and checkpoint times it records are those of a
machine running nothing else: per net the seconds to build and compile, the first step
(tracing / compilation), the first test batch, one test batch (at the cells' test batch,
max(batch, 256)) and one checkpoint save. Then `--repeats` rounds; in each every net is
timed on every backend back to back (the backend order rotated per round); a sample is the
mean of `--steps` consecutive `train_on_batch` steps on the cell's first batch. Reported: the
median over rounds and the spread (min-max), in ms.

The host: the load average and, over one second, the CPU steal and busy shares (from
/proc/stat) before and after, and the steal over the whole bench. The after-reading waits
(at most 90 s) for the bench's own work to leave the 1-minute load average: right at its end
the bench has kept both cores busy, and the average says nothing yet about other jobs. A host
is not quiet when the load is above 1.5, the CPU busy above 50 % with the bench idle, or the
steal above 5 %, before or after; the bench then says so, and the table records it (the
budget rule still reads it, but `spatialmix reproduce` warns that its budgets are
provisional).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback

from recipes.core.choices import BACKENDS, DEFAULT_BACKEND, installed_backends

SCALES = ("cpu", "smoke")        # paper-scale data are not on a CPU host
QUIET_LOAD = 1.5                 # 1-minute load average above this: the host was not quiet
QUIET_STEAL_PCT = 5.0            # CPU steal above this (%): neither
QUIET_BUSY_PCT = 50.0            # CPU busy above this (%) with the bench idle: another job is running
SETTLE_S = 90.0                  # at most this long for the bench's own load to leave the 1-minute average
SETUP_TIMEOUT = 3600             # seconds for one recipe's set-up on one backend (compiles every net)
TIME_TIMEOUT = 600
GAIN = 1.5                       # another backend this much faster for a recipe is worth saying


# ---------------------------------------------------------------------------- the host

def _cpu_times():
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    values += [0] * (8 - len(values))
    return sum(values[:8]), values[3] + values[4], values[7]  # total, idle + iowait, steal


def host_state(seconds=1.0):
    """Load averages and, over `seconds`, the CPU steal and busy shares (%) of this host."""
    state = {"load": [round(v, 2) for v in os.getloadavg()], "steal_pct": None, "busy_pct": None}
    try:
        total1, idle1, steal1 = _cpu_times()
        time.sleep(seconds)
        total2, idle2, steal2 = _cpu_times()
        span = max(1, total2 - total1)
        state.update(steal_pct=round(100.0 * (steal2 - steal1) / span, 2),
                     busy_pct=round(100.0 * (1 - (idle2 - idle1) / span), 1), ticks=[total2, steal2])
    except (OSError, ValueError):
        pass
    return state


def settled_host_state(limit_s=SETTLE_S, every_s=5.0):
    """`host_state` once the bench's own work has left the load average. The bench keeps both
    cores busy to its last step, so right at its end the 1-minute load reads about 2 whatever
    else runs; with its workers gone it falls (by e-fold a minute) to what the rest of the host
    puts on it. Read when it is at or below QUIET_LOAD, or after `limit_s` (another job keeps
    it up); the busy share over the last second shows the rest of the host either way."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(every_s)
    return host_state()


def quiet_problems(before, after, steal_during=None):
    """Why the host was not quiet (empty if it was)."""
    problems = []
    for when, state in (("before", before), ("after", after)):
        if state["load"][0] > QUIET_LOAD:
            problems.append(f"load {state['load'][0]:.2f} {when} (> {QUIET_LOAD})")
        if state.get("busy_pct") is not None and state["busy_pct"] > QUIET_BUSY_PCT:
            problems.append(f"CPU busy {state['busy_pct']:.0f} % {when}, with the bench idle (> {QUIET_BUSY_PCT:g} %)")
        if state.get("steal_pct") is not None and state["steal_pct"] > QUIET_STEAL_PCT:
            problems.append(f"CPU steal {state['steal_pct']:.1f} % {when} (> {QUIET_STEAL_PCT:g} %)")
    if steal_during is not None and steal_during > QUIET_STEAL_PCT:
        problems.append(f"CPU steal {steal_during:.1f} % during the bench (> {QUIET_STEAL_PCT:g} %)")
    return problems


# ---------------------------------------------------------------------------- probing (worker side)

def cell_key(config):
    """A grid point's id without its seed ('axis=value,...'), as the engine spells cell ids."""
    from recipes.core.engine import cell_id

    return cell_id(config, 0).rsplit(",seed=", 1)[0] if config else ""


def scale_datasets(scale):
    """The data sets a scale budgets: its default and each one with a budget override."""
    return [scale.dataset] + [d for d, over in scale.overrides.items() if "budget" in over and d != scale.dataset]


def probe_cells(recipe, scale_name, dataset, workdir):
    """[(config, seeds, TrainingProbe or None)] for every grid point of `recipe` at `scale_name`
    on `dataset`: the recipe's run_cell up to where it would train (None: it trains nothing)."""
    import keras

    from recipes.core.engine import Cell, expand_grid
    from recipes.core.train import TrainingProbe, probing_training

    scale = recipe.scales[scale_name]
    points = {}
    for config, seed in expand_grid(scale):
        key = cell_key(config)
        if key in points:
            points[key][1] += 1
        else:
            points[key] = [config, 1, seed]
    found = []
    for index, (key, (config, seeds, seed)) in enumerate(points.items(), start=1):
        cell_dir = os.path.join(workdir, f"cell{index}")
        os.makedirs(cell_dir, exist_ok=True)
        cell = Cell(key, config, seed, index, len(points), recipe, scale_name, scale, dataset, None, cell_dir,
                    lambda *a, **k: None)
        keras.utils.set_random_seed(seed)
        probe = None
        try:
            with probing_training():
                recipe.run_cell(cell)
        except TrainingProbe as caught:
            probe = caught
        found.append((config, seeds, probe, cell))
    return found


_IGNORED_KEYS = {"seed", "offset", "mean", "variance", "dtype_policy_name"}


def _canonical(obj):
    """A model config without what does not change a step's cost: seeds, initialisers and the
    normalisation constants (the data set's mean and std)."""
    if isinstance(obj, dict):
        return {k: _canonical(v) for k, v in sorted(obj.items())
                if k not in _IGNORED_KEYS and not k.endswith("_initializer")
                and not (k == "scale" and not isinstance(v, bool))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    return obj


def net_signature(model, batch_shapes):
    """(key, description) of a compiled model trained on batches of `batch_shapes`: the key is
    the model's name and a digest of its architecture, trainable flags, optimizer (without its
    learning rate), loss and batch shapes."""
    import hashlib

    optimizer = model.optimizer
    opt_config = {k: v for k, v in optimizer.get_config().items() if k not in ("learning_rate", "name")}
    loss = getattr(model, "loss", None)
    loss_name = loss if isinstance(loss, str) else type(loss).__name__
    trainable = [bool(w.trainable) for w in model.weights]
    blob = json.dumps([_canonical(model.get_config()), trainable, type(optimizer).__name__, _canonical(opt_config),
                       loss_name, batch_shapes], sort_keys=True, default=str)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:8]
    params = int(sum(math.prod(w.shape) for w in model.weights if "moving_" not in w.path))
    trainable_params = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    description = {"model": model.name, "params": params, "trainable_params": trainable_params,
                   "input_shape": list(batch_shapes[0][1:]), "batch": batch_shapes[0][0],
                   "optimizer": type(optimizer).__name__, "weight_decay": opt_config.get("weight_decay"),
                   "loss": loss_name}
    return f"{model.name}.{digest}", description


def _count(dataset):
    """Batches in one pass over a finite tf.data dataset."""
    n = int(dataset.cardinality())
    if n < 0:  # unknown: count
        n = sum(1 for _ in dataset)
    return n


def _first_batch(probe, model, batch):
    """(x, y) numpy of the cell's first training batch; random of the model's shapes for a
    training loop of its own."""
    import numpy as np

    if probe.train is not None:
        x, y = next(iter(probe.train.take(1)))
        return np.asarray(x), np.asarray(y)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *model.input_shape[1:]), dtype=np.float32)
    return x, rng.integers(0, int(model.output_shape[-1]), batch).astype("int32")


def _tile(a, n):
    import numpy as np

    reps = -(-n // len(a))
    return np.concatenate([a] * reps)[:n]


class NetsWorker:
    """One backend: probe recipes, build and time their nets."""

    def __init__(self, backend):
        from recipes.core import runtime

        self.settings = runtime.configure_runtime(backend, fast_ops=runtime.fast_ops_wanted())
        import keras

        assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
        self.backend = backend
        self.nets = {}      # key -> (model, x, y)
        self.workdir = tempfile.mkdtemp(prefix="spatialmix-bench-nets-")

    def op_setup(self, recipe, scale, warmup):
        """Probe `recipe` at `scale`; build, compile and warm up each net not seen before.
        Returns {"datasets": {dataset: {"cells": {cell: entry}}}, "nets": {new key: info},
        "errors": [...]}."""
        import shutil

        from recipes.core import budget, data
        from recipes.core.registry import get_recipe

        recipe_obj = get_recipe(recipe)
        out = {"datasets": {}, "nets": {}, "errors": []}
        for dataset in scale_datasets(recipe_obj.scales[scale]):
            workdir = tempfile.mkdtemp(dir=self.workdir)
            try:
                probes = probe_cells(recipe_obj, scale, dataset, workdir)
                cells = {}
                for config, seeds, probe, cell in probes:
                    if probe is None:
                        continue
                    key, info = self._net(probe, cell, warmup)
                    if info is not None:
                        info["first_used_by"] = f"{recipe} ({dataset}) {cell_key(config)}".strip()
                        out["nets"][key] = info
                    cell_budget = cell.budget
                    options = cell_budget.get("dataset_options", {})
                    eval_batch = max(cell_budget["batch_size"], 256)
                    if probe.train is not None:
                        steps = probe.steps_per_epoch or _count(probe.train)
                    else:
                        steps = cell_budget.get("steps_per_epoch") or -(
                            -data.num_examples(dataset, "train", **options) // cell_budget["batch_size"])
                    test = -(-data.num_examples(dataset, "test", **options) // eval_batch)
                    cells[cell_key(config)] = {
                        "net": key, "seeds": seeds, "steps_per_epoch": int(steps),
                        "eval_batches_per_epoch": _count(probe.validation) if probe.validation is not None else 0,
                        "test_batches": int(test), "loop": "fit" if probe.train is not None else "custom"}
                if cells:
                    out["datasets"][dataset] = {"cells": cells, "epochs": recipe_obj.scales[scale].budget_for(dataset).get("epochs"),
                                                "rule": budget.DECLARED.get((recipe, dataset)) if scale == "cpu" else None}
            except Exception:  # report, go on with the other recipes
                out["errors"].append(f"{recipe} ({dataset}) on {self.backend}: {traceback.format_exc()}")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        return out

    def _net(self, probe, cell, warmup):
        """(key, info) of the net a probe would train; info None if the net was seen before."""
        import numpy as np

        start = time.perf_counter()
        model = probe.build()
        probe.compile_model(model)
        build_s = time.perf_counter() - start
        batch = cell.budget["batch_size"]
        x, y = _first_batch(probe, model, batch)
        key, info = net_signature(model, [list(x.shape), list(y.shape)])
        if key in self.nets:
            return key, None
        t = time.perf_counter()
        model.train_on_batch(x, y)
        first_step_s = time.perf_counter() - t
        for _ in range(warmup):
            model.train_on_batch(x, y)
        eval_batch = max(batch, 256)
        x_eval, y_eval = _tile(x, eval_batch), _tile(y, eval_batch)
        t = time.perf_counter()
        model.test_on_batch(x_eval, y_eval)
        first_eval_s = time.perf_counter() - t
        evals = []
        for _ in range(2):
            t = time.perf_counter()
            model.test_on_batch(x_eval, y_eval)
            evals.append(time.perf_counter() - t)
        saves = []
        path = os.path.join(self.workdir, "checkpoint.keras")
        for _ in range(2):  # the second: the first save also imports and warms up the writer
            t = time.perf_counter()
            model.save(path)
            saves.append(time.perf_counter() - t)
        os.unlink(path)
        self.nets[key] = (model, np.ascontiguousarray(x), np.ascontiguousarray(y))
        info.update(build_s=round(build_s, 3), first_step_s=round(first_step_s, 3),
                    first_eval_s=round(first_eval_s, 3), eval_ms=round(1000 * min(evals), 2),
                    eval_batch=eval_batch, save_s=round(saves[-1], 3))
        return key, info

    def op_time(self, net, steps):
        model, x, y = self.nets[net]
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - t)
        return times

    def op_info(self):
        from recipes.core.runfolder import jsonable, versions

        return {"versions": versions(), "settings": jsonable(self.settings)}


def _serve(worker):
    """One JSON request per line in, one answer per line out, until `quit` or end of input."""
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            answer = {"ok": True, "result": getattr(worker, "op_" + request["op"])(**request.get("args", {}))}
        except Exception:  # report, keep serving
            answer = {"ok": False, "error": traceback.format_exc()}
        reply.write(json.dumps(answer, default=str) + "\n")
    return 0


def worker_main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m recipes.perf.bench.nets",
                                     description="one `spatialmix bench --nets` worker (started by the bench)")
    parser.add_argument("--worker", choices=BACKENDS, required=True)
    args = parser.parse_args(argv)
    return _serve(NetsWorker(args.worker))


# ---------------------------------------------------------------------------- the table (pure)

def summarise(samples):
    """{step_ms, step_ms_min, step_ms_max, samples} of per-sample seconds."""
    return {"step_ms": round(1000 * statistics.median(samples), 2), "step_ms_min": round(1000 * min(samples), 2),
            "step_ms_max": round(1000 * max(samples), 2), "samples": len(samples)}


def build_table(scale, measured, setups, samples, default_backend=DEFAULT_BACKEND):
    """The step-time table from the workers' set-ups and the timing samples.

    `setups`: {backend: {"recipes": {recipe: {dataset: {"cells": {...}}}}, "nets": {key: info}}};
    `samples`: {backend: {key: [seconds per step, one per round]}}. The recipes' cells (which
    net each trains) come from the default backend's probe if it ran, else the first backend's.
    """
    nets = {}
    for backend, setup in setups.items():
        for key, info in setup["nets"].items():
            entry = nets.setdefault(key, {k: v for k, v in info.items()
                                          if k in ("model", "params", "trainable_params", "input_shape", "batch",
                                                   "optimizer", "weight_decay", "loss", "first_used_by")})
            times = {k: info[k] for k in ("build_s", "first_step_s", "first_eval_s", "eval_ms", "eval_batch",
                                          "save_s") if k in info}
            if samples.get(backend, {}).get(key):
                times.update(summarise(samples[backend][key]))
                entry.setdefault("backends", {})[backend] = times
    source = default_backend if default_backend in setups else next(iter(setups), None)
    recipes = setups[source]["recipes"] if source else {}
    table = {"format": 1, "scale": scale, "command": measured.get("command"), "measured": measured,
             "nets": dict(sorted(nets.items())), "recipes": dict(sorted(recipes.items()))}
    return with_note(table)


def with_note(table):
    """The table with a `note` first, saying plainly whether budgets may be read from it."""
    m = table["measured"]
    if m.get("quiet") and not m.get("quick"):
        note = (f"measured on a quiet host ({m.get('host')}, {m.get('date')}); the cpu budget rule "
                "(recipes.core.budget) reads it")
    else:
        why = "; ".join((["--quick: 1 round of 1 step"] if m.get("quick") else []) + list(m.get("problems") or []))
        note = (f"PROVISIONAL ({why}): the budgets the rule reads from it are not final. Replace it: "
                "`spatialmix bench --nets cpu` on a quiet host")
    return {"note": note, **{k: v for k, v in table.items() if k != "note"}}


def merge_tables(old, new):
    """`new` over `old`: new recipes' entries replace old ones; nets no recipe uses are dropped.
    The header is the new one, with the earlier measurement kept under `earlier` for the
    recipes it still covers."""
    if not old or old.get("scale") != new.get("scale"):
        return new
    recipes = {**old.get("recipes", {}), **new["recipes"]}
    used = {cell["net"] for per in recipes.values() for d in per.values() for cell in d["cells"].values()}
    nets = {k: v for k, v in {**old.get("nets", {}), **new["nets"]}.items() if k in used}
    kept = sorted(set(old.get("recipes", {})) - set(new["recipes"]))
    measured = dict(new["measured"])
    if kept:
        earlier = {k: v for k, v in old.get("measured", {}).items() if k != "earlier"}
        measured["earlier"] = {**earlier, "recipes": kept}
        measured["quiet"] = bool(new["measured"].get("quiet")) and bool(old.get("measured", {}).get("quiet"))
        measured["quick"] = bool(new["measured"].get("quick")) or bool(old.get("measured", {}).get("quick"))
    return with_note({**new, "measured": measured, "nets": dict(sorted(nets.items())),
                      "recipes": dict(sorted(recipes.items()))})


def recipe_estimates(table_data, backends):
    """Per (recipe, dataset) of the table: the rule's epochs (default backend) with the inputs
    the recipe declared (its `rule` entry), and the seconds at those epochs on each backend.
    A budget the rule does not set is timed at its own epochs.
    Returns [(recipe, dataset, cells, epochs by the rule, epochs now, {backend: seconds})]."""
    from recipes.core import budget

    source = budget.StepTable(table_data)
    out = []
    for recipe, per in table_data.get("recipes", {}).items():
        for dataset, entry in per.items():
            rule = entry.get("rule")
            now = entry.get("epochs")
            cells = sum(c.get("seeds", 1) for c in entry["cells"].values())
            extras = {"extra_steps": (rule or {}).get("extra_steps", 0.0), "extra_s": (rule or {}).get("extra_s", 0.0)}
            epochs = now if rule is None else budget.rule_epochs(recipe, dataset, rule["max_epochs"],
                                                                 rule["min_epochs"], source=source, **extras)
            seconds = {b: budget.estimate_s(recipe, dataset, epochs, b, source=source, **extras)
                       for b in backends} if epochs is not None else {}
            out.append((recipe, dataset, cells, epochs, now, seconds))
    return out


def _minutes(seconds):
    return "—" if seconds is None else f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def format_report(table_data, backends, estimates, default_backend=DEFAULT_BACKEND):
    """The bench's printout: the host, the nets (ms per step per backend), then each recipe's
    epochs by the rule and its estimated time per backend."""
    m = table_data["measured"]
    lines = [f"spatialmix bench --nets {table_data['scale']}: one training step of every net the "
             f"{table_data['scale']}-scale recipes train, as their cells build it",
             f"host {m.get('host')}: {m.get('cpu')}, {m.get('cores')} cores; "
             f"{m.get('repeats')} rounds x {m.get('steps')} steps, warm-up {m.get('warmup')}; wall {m.get('wall_s', 0):.0f} s",
             f"load average (1, 5, 15 min) before {m['before']['load']}, after {m['after']['load']}; "
             f"CPU steal before {_pct(m['before'].get('steal_pct'))}, after {_pct(m['after'].get('steal_pct'))}, "
             f"during {_pct(m.get('steal_during_pct'))}"]
    if m.get("problems"):
        lines.append("WARNING: the host was not quiet (" + "; ".join(m["problems"]) + "): these times are not "
                     "the machine's, and budgets read from them are provisional.")
    else:
        lines.append("the host was quiet (load <= 1.5 before and after, steal <= 5 %).")
    lines.append("")
    width = max([len(k) for k in table_data["nets"]] + [3])
    header = f"{'net':<{width}}  {'params':>9}  {'input':<9} {'batch':>5}  {'optimizer':<9}" + "".join(
        f"{b + ' ms (min-max)':>24}" for b in backends) + "  first used by"
    lines += [header, "-" * len(header)]
    for key, net in table_data["nets"].items():
        cols = []
        for b in backends:
            t = net.get("backends", {}).get(b)
            cols.append(f"{t['step_ms']:>9.1f} ({t['step_ms_min']:.0f}-{t['step_ms_max']:.0f})" if t else "—")
        shape = "x".join(str(v) for v in net.get("input_shape", []))
        lines.append(f"{key:<{width}}  {net.get('params', 0):>9,}  {shape:<9} {net.get('batch', 0):>5}  "
                     f"{net.get('optimizer', ''):<9}" + "".join(f"{c:>24}" for c in cols)
                     + f"  {net.get('first_used_by', '')}")
    lines += ["", f"the budget rule (recipes.core.budget: cells share {_share()} s per recipe) on the default "
                  f"backend, {default_backend}:"]
    header = f"{'recipe (data)':<40}{'cells':>6}{'epochs: rule':>14}{'now':>6}" + "".join(
        f"{b:>13}" for b in backends)
    lines += [header, "-" * len(header)]
    total = {b: 0.0 for b in backends}
    for recipe, dataset, cells, epochs, now, seconds in estimates:
        gains = []
        base = seconds.get(default_backend)
        for b, s in seconds.items():
            if b != default_backend and base and s and base / s >= GAIN:
                gains.append(f"{b} {base / s:.1f}x faster")
        for b in backends:
            if seconds.get(b) is not None:
                total[b] += seconds[b]
        lines.append(f"{recipe + ' (' + dataset + ')':<40}{cells:>6}{str(epochs):>14}{str(now):>6}"
                     + "".join(f"{_minutes(seconds.get(b)):>13}" for b in backends)
                     + (f"  ({'; '.join(gains)})" if gains else ""))
    lines.append(f"{'total':<66}" + "".join(f"{_minutes(total[b]):>13}" for b in backends))
    return "\n".join(lines)


def _share():
    from recipes.core import budget

    return f"{budget.SHARE_S:.0f}"


def _pct(value):
    return "?" if value is None else f"{value:.1f} %"


# ---------------------------------------------------------------------------- the parent

def _spawn(backend):
    from recipes.perf.bench.process import WorkerProcess

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return WorkerProcess(backend, [sys.executable, "-m", "recipes.perf.bench.nets", "--worker", backend], env)


def _log(args, message):
    if not args.quiet:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _check_table_path(path):
    from zoo.errors import check

    directory = os.path.dirname(os.path.abspath(path))
    check(os.path.isdir(directory), f"cannot write the step-time table {path!r}: {directory} is not a directory; "
                                    "pass --table PATH or --no-table")
    check(not os.path.isdir(path), f"cannot write the step-time table {path!r}: it is a directory; pass --table PATH")
    check(os.access(directory, os.W_OK), f"cannot write the step-time table {path!r}: {directory} is not writable; "
                                         "pass --table PATH or --no-table")


def run_nets(args):
    """`spatialmix bench --nets SCALE`: returns the exit code."""
    from recipes.core import budget
    from recipes.core.registry import list_recipes
    from recipes.core.runfolder import atomic_write_json
    from recipes.perf.bench.config import parse_list
    from zoo.errors import check, check_choice

    check_choice("scale for --nets", args.nets, SCALES)
    backends = parse_list(args.backends, installed_backends(), "backend", BACKENDS)
    every = list_recipes()
    recipes = parse_list(args.recipes, every, "recipe", every)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    steps = args.steps if args.steps is not None else (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else 1
    for name, value, low in (("--repeats", repeats, 1), ("--steps", steps, 1), ("--warmup", warmup, 0)):
        check(value >= low, f"{name} must be >= {low}, got {value}")
    path = None if args.no_table else (args.table or (budget.TABLE_PATH if args.nets == "cpu" else None))
    if path:
        _check_table_path(path)

    started = time.monotonic()
    before = host_state()
    early = quiet_problems(before, before)
    if early:
        print("warning: the host is not quiet (" + "; ".join(early) + "); the times will be noisy and the "
              "table provisional", file=sys.stderr)
    workers, setups, errors = {}, {}, []
    samples = {b: {} for b in backends}
    try:
        for backend in backends:  # one at a time: set-up times are those of an otherwise idle host
            worker = workers[backend] = _spawn(backend)
            setup = {"recipes": {}, "nets": {}}
            try:
                for recipe in recipes:
                    _log(args, f"{backend}: probing {recipe} and building its nets")
                    out = worker.request("setup", timeout=SETUP_TIMEOUT, recipe=recipe, scale=args.nets, warmup=warmup)
                    errors += out["errors"]
                    if out["datasets"]:
                        setup["recipes"][recipe] = out["datasets"]
                    setup["nets"].update(out["nets"])
                setup.update(worker.request("info"))
            except RuntimeError as error:
                errors.append(str(error))
                worker.kill()
                continue
            setups[backend] = setup
            _log(args, f"{backend}: {len(setup['nets'])} nets ready")
        keys = list(dict.fromkeys(k for s in setups.values() for k in s["nets"]))
        for r in range(repeats):
            _log(args, f"round {r + 1}/{repeats}: {len(keys)} nets")
            order = [b for b in backends if b in setups]
            order = order[r % len(order):] + order[:r % len(order)] if order else order
            for key in keys:
                for backend in order:
                    if key not in setups[backend]["nets"] or not workers[backend].alive:
                        continue
                    try:
                        times = workers[backend].request("time", timeout=TIME_TIMEOUT, net=key, steps=steps)
                    except RuntimeError as error:
                        errors.append(str(error))
                        continue
                    samples[backend].setdefault(key, []).append(sum(times) / len(times))
    finally:
        for worker in workers.values():
            worker.close()
    _log(args, "the bench is done; waiting for its own load to leave the load average (at most "
               f"{SETTLE_S:.0f} s) before the host is read again")
    after = settled_host_state()
    steal_during = None
    if before.get("ticks") and after.get("ticks"):
        span = max(1, after["ticks"][0] - before["ticks"][0])
        steal_during = round(100.0 * (after["ticks"][1] - before["ticks"][1]) / span, 2)
    problems = quiet_problems(before, after, steal_during)
    measured = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), **_machine(),
        "command": _command(args),
        "before": {k: v for k, v in before.items() if k != "ticks"},
        "after": {k: v for k, v in after.items() if k != "ticks"}, "steal_during_pct": steal_during,
        "quiet": not problems, "problems": problems, "quick": bool(args.quick), "repeats": repeats, "steps": steps,
        "warmup": warmup, "wall_s": round(time.monotonic() - started, 1), "default_backend": DEFAULT_BACKEND,
        "versions": {b: s.get("versions") for b, s in setups.items()},
        "settings": {b: s.get("settings") for b, s in setups.items()},
    }
    table_data = build_table(args.nets, measured, setups, samples)
    if path and set(recipes) != set(every) and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            table_data = merge_tables(json.load(f), table_data)
    print(format_report(table_data, backends, recipe_estimates(table_data, backends)))
    if path:
        atomic_write_json(path, table_data)
        print(f"step-time table: {path}" + (" (provisional: " + ("quick" if args.quick else "host not quiet") + ")"
                                            if args.quick or problems else ""))
    for error in errors:
        lines = error.strip().splitlines()
        print("error: " + (lines[0] + (" ... " + lines[-1] if len(lines) > 1 else "") if lines else "?"),
              file=sys.stderr)
    complete = all(key in samples[b] for b, s in setups.items() for key in s["nets"])
    return 0 if setups and complete and not errors else 1


def _command(args):
    parts = ["spatialmix bench --nets", args.nets]
    for flag, value in (("--recipes", args.recipes), ("--backends", args.backends), ("--repeats", args.repeats),
                        ("--steps", args.steps), ("--warmup", args.warmup)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(parts + (["--quick"] if args.quick else []))


def _machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


if __name__ == "__main__":
    sys.exit(worker_main())
