"""Where a run's cells train: `local` (this process, one cell after another: the default) or
`ray` (every cell a Ray task, spread over the GPUs and machines of a Ray cluster).

    spatialmix run convmixer-mixing --scale paper --executor ray --address auto --gpus-per-cell 1

Why Ray Core tasks: a cell is one training with no state shared with the others, which is
what a task is. Ray pins each task to `--gpus-per-cell` GPUs (it sets CUDA_VISIBLE_DEVICES
in the task's process, so a cell with `--distribute --gpus-per-cell 2` trains data-parallel
over exactly its two), re-runs a task whose worker or node died (`--max-retries`, Ray's own
default 3), and `ray start --head` / `ray start --address` spans machines. Ray Tune is not
used: it brings its own trials, checkpoints and results beside the run folder's.

The driver stays `recipes.core.engine.run_recipe`: it holds the run lock, skips finished
cells, submits one task per pending cell and alone writes results.csv and the run's
cell_end events as the tasks finish (one writer per file). A task takes its cell's lock
(`RunFolder.cell_lock`: two copies of one cell never train at once), writes the cell's
cell_start and epoch_end events to the cell's own log, and resumes from the cell's last
epoch checkpoint, so a retried task continues where the killed one stopped.

Across machines the run folder (and a TFDS `--data-dir`) must be on a filesystem that
every node mounts at the same path, with the same Python environment on every node. Each
task checks that it sees the folder its driver wrote (`RunFolder.check_visible`): a node
that does not fails the run in one line instead of training into a folder no one reads.

Without `--address` the driver starts a one-machine cluster for the run, on loopback only,
with the CPUs and GPUs Ray detects, and stops it at the end; `--address auto` joins the
cluster that `ray start` started on this machine (or $RAY_ADDRESS), `HOST:PORT` any other.
Ray is an optional extra: `pip install 'spatialmix[ray]'`.
"""

import dataclasses
import importlib.util
import logging
import os
import platform
import re
import socket

from zoo.errors import SpatialmixError, check

EXECUTORS = ("local", "ray")
INSTALL_RAY = "pip install 'spatialmix[ray]'"
DEFAULT_MAX_RETRIES = 3          # Ray's own default for tasks
CELL_LOCK_WAIT_S = 60.0          # a retried task waits this long for a killed copy's process to go
POLL_S = 0.5                     # how often the driver looks for finished tasks and new cell events
# environment variables a cell's worker gets from the driver (Keras reads its backend at import)
PASSED_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "SPATIALMIX_FAST_OPS", "SPATIALMIX_MALLOC_TUNING")


@dataclasses.dataclass(frozen=True)
class CellJob:
    """One pending cell, as a task receives it (plain data: it travels to other machines)."""

    cell_id: str
    config: dict
    seed: int
    index: int
    total: int
    recipe_id: str
    scale_name: str
    dataset: str
    data_dir: str | None
    run_dir: str
    distribute: bool
    token: str | None = None      # the driver's invocation in run.json (RunFolder.check_visible)


# ---------------------------------------------------------------------------- choosing one

def ray_installed():
    return importlib.util.find_spec("ray") is not None


def make_executor(kind="local", address=None, gpus_per_cell=None, cpus_per_cell=None, max_retries=None):
    """The executor the `run` flags ask for, checked (one-line errors; Ray is not imported yet)."""
    check(kind in EXECUTORS, f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
    given = [name for name, value in (("--address", address), ("--gpus-per-cell", gpus_per_cell),
                                      ("--cpus-per-cell", cpus_per_cell), ("--max-retries", max_retries))
             if value is not None]
    if kind == "local":
        check(not given, f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --executor ray; "
                         "add --executor ray, or drop it")
        return LocalExecutor()
    check(ray_installed(), f"--executor ray needs Ray, which is not installed; install it with: {INSTALL_RAY}")
    gpus = _number("--gpus-per-cell", gpus_per_cell, 0.0, minimum=0.0)
    check(gpus < 1 or gpus == int(gpus), f"--gpus-per-cell must be a whole number, or a fraction below 1 to "
                                         f"share a GPU between cells, got {gpus_per_cell}")
    cpus = _number("--cpus-per-cell", cpus_per_cell, 1.0, minimum=0.0, strict=True)
    retries = _number("--max-retries", max_retries, DEFAULT_MAX_RETRIES, minimum=0, integer=True)
    if address is not None:
        check(address == "auto" or re.fullmatch(r"(ray://)?[\w.\-\[\]:]+:\d+", address),
              f"--address must be 'auto' or HOST:PORT (the head node's `ray start --head` address), got {address!r}")
    return RayExecutor(address, int(gpus) if gpus == int(gpus) else gpus,
                       int(cpus) if cpus == int(cpus) else cpus, int(retries))


def _number(flag, value, default, minimum, integer=False, strict=False):
    if value is None:
        return default
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise SpatialmixError(f"{flag} must be {'an integer' if integer else 'a number'}, got {value!r}") from None
    ok = number > minimum if strict else number >= minimum
    check(ok, f"{flag} must be {'>' if strict else '>='} {minimum:g}, got {value}")
    return number


# ---------------------------------------------------------------------------- local

class LocalExecutor:
    """Every cell in this process, in grid order: `spatialmix run` as it always was."""

    kind = "local"

    def open(self, backend):
        return None           # nothing to record: run.json's runtime is this process's

    def run(self, jobs, train_here, train_task, folder, listener=None):
        for job in jobs:
            yield job, train_here(job), {}

    def close(self):
        pass


# ---------------------------------------------------------------------------- ray

class RayExecutor:
    """Every cell a Ray task: `--gpus-per-cell` GPUs and `--cpus-per-cell` CPUs each,
    retried up to `--max-retries` times when its worker or node dies."""

    kind = "ray"

    def __init__(self, address=None, gpus_per_cell=0, cpus_per_cell=1, max_retries=DEFAULT_MAX_RETRIES):
        self.address = address
        self.gpus_per_cell = gpus_per_cell
        self.cpus_per_cell = cpus_per_cell
        self.max_retries = max_retries
        self.started_here = False
        self.pending = {}

    def open(self, backend):
        """Join (or start) the cluster and check a cell fits on one of its nodes; returns what
        run.json records about it."""
        if self.address is None:
            # The run's own cluster listens on loopback only. Ray resolves "127.0.0.1" to the
            # machine's network address unless this is set, and reads it when it is imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if self.address not in (None, "auto"):
            _check_reachable(self.address)
        import ray

        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env["KERAS_BACKEND"] = backend
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                 "runtime_env": {"env_vars": env}}
        try:
            if self.address is None:
                ray.init(address="local", _node_ip_address="127.0.0.1", **quiet)
                self.started_here = True
            else:
                ray.init(address=self.address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = "" if self.address is None else f" at {self.address}"
            raise SpatialmixError(f"cannot start or reach the Ray cluster{where} ({_first_line(e)}); start one with "
                                  "`ray start --head`, pass its address, or drop --address for a local one") from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= self.cpus_per_cell
                and n["Resources"].get("GPU", 0) >= self.gpus_per_cell]
        if not fits:
            gpus = sorted({n["Resources"].get("GPU", 0) for n in nodes})
            cpus = sorted({n["Resources"].get("CPU", 0) for n in nodes})
            self.close()
            raise SpatialmixError(
                f"no node of the Ray cluster has {self.gpus_per_cell:g} GPU(s) and {self.cpus_per_cell:g} CPU(s) for "
                f"a cell (its nodes have GPUs {', '.join(f'{g:g}' for g in gpus)} and CPUs "
                f"{', '.join(f'{c:g}' for c in cpus)}); lower --gpus-per-cell / --cpus-per-cell or add nodes")
        resources = ray.cluster_resources()
        return {"kind": "ray", "address": self.address or "local", "nodes": len(nodes),
                "cluster": {k: resources[k] for k in ("CPU", "GPU") if k in resources},
                "gpus_per_cell": self.gpus_per_cell, "cpus_per_cell": self.cpus_per_cell,
                "max_retries": self.max_retries, "ray": ray.__version__}

    def run(self, jobs, train_here, train_task, folder, listener=None):
        """Submit every job as a task; yield (job, metrics, placement) as each one finishes.
        Meanwhile the new events in the cells' logs go to `listener` (the CLI's progress)."""
        import ray

        task = ray.remote(
            num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell, max_retries=self.max_retries,
            retry_exceptions=False,   # a Python error in a cell is not retried; a dead worker or node is
            # a GPU cell gets a fresh process: a framework keeps the devices it saw first, and its memory
            max_calls=1 if self.gpus_per_cell else 0)(train_task)
        self.pending = {task.remote(job): job for job in jobs}
        offsets = {job.cell_id: 0 for job in jobs}
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                job = self.pending.pop(ref)
                result = self._result(ref, job)
                self._forward(folder, offsets, listener)
                yield job, result["metrics"], result["placement"]
            self._forward(folder, offsets, listener)

    @staticmethod
    def _forward(folder, offsets, listener):
        if listener is None:
            return
        for cell_id, offset in offsets.items():
            events, offsets[cell_id], _ = folder.cell_events(cell_id, offset)
            for event in events:
                listener(event)

    def _result(self, ref, job):
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause
            if isinstance(cause, SpatialmixError):
                raise SpatialmixError(str(cause)) from None
            if isinstance(cause, ImportError) and getattr(cause, "name", "") and \
                    cause.name.split(".")[0] in ("recipes", "zoo", "keras"):
                raise SpatialmixError(f"a Ray node cannot import {cause.name}: install the same environment "
                                      "(spatialmix and its backend) on every node") from None
            raise RuntimeError(f"cell {job.cell_id} failed in its Ray task: {type(cause).__name__}: "
                               f"{_first_line(cause)}") from e
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.TaskCancelledError) as e:
            raise RuntimeError(f"cell {job.cell_id}: its Ray task died {self.max_retries + 1} time(s) "
                               f"({_first_line(e)}); run the same command again to resume it") from None

    def close(self):
        """Cancel what still runs (an interrupted or failed run) and leave the cluster; the
        cluster this run started is stopped with it."""
        try:
            import ray
        except ImportError:
            return
        for ref in list(self.pending):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished, or its node is gone
                pass
        self.pending = {}
        if ray.is_initialized():
            ray.shutdown()


def _check_reachable(address, timeout_s=10):
    """A one-line error now for a head that does not answer (Ray itself keeps retrying for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SpatialmixError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); start its head with "
                              "`ray start --head`, check the address it printed, or drop --address for a local "
                              "one") from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def placement():
    """Where the calling Ray task runs: host, Ray node id, node IP, the GPU ids Ray gave it,
    CUDA_VISIBLE_DEVICES as the task's process sees it (what Keras' backend will use) and
    the process id."""
    import ray

    context = ray.get_runtime_context()
    return {"host": platform.node(), "node": context.get_node_id(), "ip": ray.util.get_node_ip_address(),
            "gpus": [str(g) for g in ray.get_gpu_ids()], "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid()}
