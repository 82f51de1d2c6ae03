"""`spatialmix run --executor ray`: a recipe's cells as Ray tasks, on real Ray clusters.

Every cluster here listens on 127.0.0.1 only, without dashboard, in a temporary Ray
directory: the one `spatialmix run` starts for itself (no --address); one the test starts
with `ray start --head` (the way a user starts one), with 2 CPUs and 2 declared GPUs (Ray
schedules declared GPUs and sets CUDA_VISIBLE_DEVICES per task on a machine without any);
in the slow tier, two nodes of Ray's own test cluster (ray.cluster_utils). Runs are the
smoke scale of convmixer-mixing: 3 cells of 2 epochs of 4 steps.
"""

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from recipes.core import runfolder

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'spatialmix[ray]' (scripts/setup.sh does)")

BIN = os.path.dirname(sys.executable)
SPATIALMIX, RAY = os.path.join(BIN, "spatialmix"), os.path.join(BIN, "ray")
RECIPE, CELLS = "convmixer-mixing", 3
TIMEOUT = 600                       # one smoke run, on 2 shared cores
TIMING = {"wall_s", "samples_per_s", "train_samples_per_s", "train_s_per_epoch", "train_s_first_epoch"}


# ---------------------------------------------------------------- clusters on loopback

@pytest.fixture(scope="module")
def ray_dir():
    """A short temporary Ray directory (its unix socket paths must stay under 108 bytes).
    At the end, any process still carrying it in its environment (a test's cluster whose
    owner was killed) is killed, by its pid."""
    path = tempfile.mkdtemp(prefix="smray-", dir="/tmp")
    yield path
    for pid in processes_with(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def processes_with(ray_tmpdir):
    marker = f"RAY_TMPDIR={ray_tmpdir}".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                pass
    return found


def ray_env(ray_tmpdir):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_TMPDIR": ray_tmpdir,
            "RAY_AUTH_MODE": "disabled",                    # no token written under $HOME
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",       # keeps 127.0.0.1 from resolving to a network address
            "RAY_USAGE_STATS_ENABLED": "0"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Head:
    """`ray start --head --block` in its own process group, as a user starts a cluster."""

    def __init__(self, ray_tmpdir, cpus=2, gpus=0):
        self.address = f"127.0.0.1:{free_port()}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ray-head-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={self.address.split(':')[1]}", "--node-ip-address=127.0.0.1",
             f"--num-cpus={cpus}", f"--num-gpus={gpus}", "--include-dashboard=false", f"--temp-dir={ray_tmpdir}",
             "--object-store-memory=100000000", "--disable-usage-stats"],
            env=ray_env(ray_tmpdir), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 180
        while "Ray runtime started" not in open(self.log.name).read():
            assert self.process.poll() is None and time.time() < deadline, open(self.log.name).read()[-3000:]
            time.sleep(0.2)

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        os.unlink(self.log.name)


def listening(pgid):
    """The addresses the processes of a process group listen on (TCP)."""
    found = []
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines():
        for pid in (int(p) for p in re.findall(r"pid=(\d+)", line)):
            try:
                if os.getpgid(pid) == pgid:
                    found.append(line.split()[3])
            except ProcessLookupError:
                pass
    return found


@pytest.fixture(scope="module")
def head(ray_dir):
    """A one-node cluster with 2 CPUs and 2 declared GPUs, as `ray start --head` starts it,
    listening on loopback only."""
    node = Head(ray_dir, cpus=2, gpus=2)
    try:
        if shutil.which("ss"):
            addresses = listening(node.process.pid)
            assert addresses and all("127.0.0.1" in a for a in addresses), addresses
        yield node
    finally:
        node.kill()


# ---------------------------------------------------------------- running and reading

def run_args(runs_dir, *extra):
    return [SPATIALMIX, "run", RECIPE, "--scale", "smoke", "--runs-dir", str(runs_dir), *extra]


def run(ray_dir, runs_dir, *extra):
    return subprocess.run(run_args(runs_dir, *extra), capture_output=True, text=True, timeout=TIMEOUT,
                          env=ray_env(ray_dir))


def start(ray_dir, runs_dir, *extra):
    return subprocess.Popen(run_args(runs_dir, *extra, "--quiet"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ray_env(ray_dir))


def folder_of(runs_dir):
    return runfolder.RunFolder(os.path.join(runs_dir, RECIPE, "smoke-digits-seed0"))


def rows_of(folder):
    return {r["cell"]: r for r in folder.rows()}


def cell_log(folder, cell):
    return folder.cell_events(cell).events


def cell_ids(folder):
    return sorted({e["cell"] for e in folder.all_events() if e.get("cell")})


def wait_until(condition, what, process=None, timeout=TIMEOUT, every=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.stderr.read()[-3000:]}")
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def mid_cell(folder):
    """A cell whose epoch 1 is checkpointed and logged, that has no results row yet: (cell, its
    cell_start event), or None."""
    if not os.path.isdir(folder.path):
        return None
    done = set(rows_of(folder))
    for cell in cell_ids(folder):
        events = cell_log(folder, cell)
        starts = [e for e in events if e["event"] == "cell_start"]
        if cell not in done and starts and any(e["event"] == "epoch_end" and e["epoch"] == 1 for e in events):
            return cell, starts[-1]
    return None


def printed_table(stdout):
    return [line for line in stdout.splitlines() if line.startswith("|")]


# ---------------------------------------------------------------- the tests

@needs_ray
def test_ray_gives_the_local_cells_and_metrics_with_two_cells_at_once_on_their_own_gpus(tmp_path, ray_dir, head):
    local = run(ray_dir, tmp_path / "local")
    assert local.returncode == 0, local.stderr[-3000:]
    remote = run(ray_dir, tmp_path / "ray", "--executor", "ray", "--address", head.address,
                 "--gpus-per-cell", "1", "--cpus-per-cell", "1")
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert printed_table(remote.stdout) == printed_table(local.stdout) != []

    mine, theirs = folder_of(tmp_path / "ray"), folder_of(tmp_path / "local")
    got, want = rows_of(mine), rows_of(theirs)
    assert sorted(got) == sorted(want) and len(got) == CELLS
    for cell, row in want.items():
        assert {k: v for k, v in got[cell].items() if k not in TIMING} == \
               {k: v for k, v in row.items() if k not in TIMING}, cell

    # one writer per file: the driver's log has the run's events and every cell_end, with where it ran;
    # each cell's epochs are in its own log, written by its task
    events = mine.events().events
    assert not [e for e in events if e["event"] in ("cell_start", "epoch_end")]
    ends = {e["cell"]: e for e in events if e["event"] == "cell_end"}
    assert sorted(ends) == sorted(want)
    spans = []
    for cell, end in ends.items():
        log = cell_log(mine, cell)
        assert [e["event"] for e in log] == ["cell_start", "epoch_end", "epoch_end"]
        start = log[0]
        assert len(start["gpus"]) == 1 and start["gpus"] == end["gpus"] and start["host"] == end["host"]
        spans.append((start["time"], log[-1]["time"], start["gpus"][0]))   # from its start to its last epoch
    at_once = [(a, b) for a in spans for b in spans if a < b and a[0] < b[1] and b[0] < a[1]]
    assert at_once, f"no two cells trained at the same time: {spans}"
    assert all(a[2] != b[2] for a, b in at_once), f"two cells shared a GPU id: {spans}"
    executor = mine.meta()["invocations"][-1]["runtime"]["executor"]
    assert executor["kind"] == "ray" and executor["cluster"]["GPU"] == 2 and executor["gpus_per_cell"] == 1

    # a local run's cells log where they always did
    assert [e["event"] for e in theirs.events().events].count("epoch_end") == 2 * CELLS
    assert not os.path.exists(os.path.join(theirs.cell_dir(next(iter(want))), ".lock"))


@needs_ray
def test_a_killed_worker_is_retried_and_its_cell_resumes_from_its_checkpoint(tmp_path, ray_dir):
    """No --address: the run starts its own one-machine cluster."""
    folder = folder_of(tmp_path)
    driver = start(ray_dir, tmp_path, "--executor", "ray", "--max-retries", "2")
    try:
        victim, started = wait_until(lambda: mid_cell(folder), "a cell past its first epoch", driver)
        os.kill(started["pid"], signal.SIGKILL)
        _, stderr = driver.communicate(timeout=TIMEOUT)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    rows = rows_of(folder)
    assert len(rows) == CELLS and len(folder.rows()) == CELLS
    assert int(rows[victim]["resumed_from_epoch"]) >= 1
    starts = [e for e in cell_log(folder, victim) if e["event"] == "cell_start"]
    assert len(starts) == 2 and starts[1]["pid"] != started["pid"]
    assert starts[1]["resumed_from_epoch"] >= 1
    assert [e["cell"] for e in folder.events().events if e["event"] == "cell_end"].count(victim) == 1
    assert os.listdir(folder.cell_dir(victim)) and not [f for f in os.listdir(folder.cell_dir(victim))
                                                         if f.startswith("epoch-")]


@needs_ray
def test_after_the_driver_is_killed_the_rerun_trains_no_finished_cell_again_and_loses_none(tmp_path, ray_dir):
    folder = folder_of(tmp_path)
    driver = start(ray_dir, tmp_path, "--executor", "ray")

    def one_done_and_one_mid():
        return rows_of(folder) and mid_cell(folder)

    try:
        victim, started = wait_until(one_done_and_one_mid, "a finished cell and one past its first epoch", driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    killed_at, finished = time.time(), set(rows_of(folder))
    # the run's own cluster goes with its driver: nothing keeps training the cell
    wait_until(lambda: not os.path.exists(f"/proc/{started['pid']}"), "the killed run's worker to exit",
               timeout=120, every=0.5)

    again = run(ray_dir, tmp_path, "--executor", "ray")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = folder.rows()
    assert len(rows) == CELLS and len({r["cell"] for r in rows}) == CELLS
    for cell in finished:
        assert not [e for e in cell_log(folder, cell) if e["event"] == "cell_start" and e["time"] > killed_at], \
            f"finished cell {cell} trained again"
    restart = [e for e in cell_log(folder, victim) if e["event"] == "cell_start" and e["time"] > killed_at]
    assert len(restart) == 1 and restart[0]["resumed_from_epoch"] >= 1
    assert int(rows_of(folder)[victim]["resumed_from_epoch"]) >= 1


@needs_ray
def test_a_second_driver_is_refused_before_it_starts_a_cluster(tmp_path, ray_dir):
    folder = folder_of(tmp_path)
    first = start(ray_dir, tmp_path, "--executor", "ray")
    try:
        wait_until(lambda: any(e["event"] == "run_start" for e in folder.events().events), "the first run", first)
        sessions = sorted(os.listdir(os.path.join(ray_dir, "ray")))
        second = run(ray_dir, tmp_path, "--executor", "ray")
        assert second.returncode == 2
        error = second.stderr.strip()
        assert error == f"spatialmix: error: run folder {folder.path} is in use by another run (pid {first.pid}); " \
                        "wait for it or pass another --runs-dir"
        assert sorted(os.listdir(os.path.join(ray_dir, "ray"))) == sessions, "the refused driver started a cluster"
        # SIGINT (Ctrl-C, the TUI's cancel) stops a Ray run as it stops a local one
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, stderr[-2000:]
    last = folder.events().events[-1]
    assert last["event"] == "run_end" and last["status"] == "interrupted"


def test_without_ray_the_executor_is_a_one_line_install_hint(tmp_path):
    """Ray is an optional extra: where it is not importable, --executor ray says how to install it."""
    code = ("import sys; sys.modules['ray'] = None\n"     # what an environment without Ray finds
            "from recipes.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "run", RECIPE, "--scale", "smoke", "--runs-dir",
                           str(tmp_path / "runs"), "--executor", "ray"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == ("spatialmix: error: --executor ray needs Ray, which is not "
                                                    "installed; install it with: pip install 'spatialmix[ray]'\n")
    assert not os.path.exists(tmp_path / "runs")


@needs_ray
def test_ray_flags_are_checked_before_anything_runs(tmp_path, ray_dir):
    for args, words in ((["--address", "auto"], "--address applies only to --executor ray"),
                        (["--executor", "ray", "--address", f"127.0.0.1:{free_port()}"],
                         "cannot reach the Ray cluster at 127.0.0.1:"),
                        (["--executor", "ray", "--gpus-per-cell", "1.5"], "--gpus-per-cell must be a whole number"),
                        (["--executor", "ray", "--cpus-per-cell", "0"], "--cpus-per-cell must be > 0"),
                        (["--executor", "ray", "--max-retries", "-1"], "--max-retries must be >= 0"),
                        (["--executor", "ray", "--address", "nowhere"], "--address must be 'auto' or HOST:PORT"),
                        (["--executor", "dask"], "unknown executor 'dask'")):
        proc = run(ray_dir, tmp_path / "runs", *args)
        assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, (args, proc.stderr)
    assert not os.path.exists(tmp_path / "runs")


@needs_ray
def test_a_cell_that_needs_more_gpus_than_any_node_has_is_one_line(tmp_path, ray_dir, head):
    proc = run(ray_dir, tmp_path, "--executor", "ray", "--address", head.address, "--gpus-per-cell", "4")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert "no node of the Ray cluster has 4 GPU(s)" in proc.stderr and "GPUs 2" in proc.stderr
    assert not os.path.exists(folder_of(tmp_path).path)


@needs_ray
def test_a_node_that_cannot_see_the_run_folder_is_a_clear_error(tmp_path, ray_dir, head):
    """The check each task makes first, run in a Ray task: the folder its driver wrote is not
    there (a node without the shared filesystem), or another run's is."""
    code = """
import os, sys, ray
from recipes.core import runfolder
ray.init(address=sys.argv[1], log_to_driver=False)
def probe(path, token):
    try:
        runfolder.RunFolder(path).check_visible(token, "node x")
        return "ok"
    except Exception as e:
        return str(e)
probe = ray.remote(num_cpus=0)(probe)
print(ray.get(probe.remote(sys.argv[2], sys.argv[3])))
print(ray.get(probe.remote(sys.argv[2] + "-elsewhere", sys.argv[3])))
print(ray.get(probe.remote(sys.argv[2], "another-run")))
"""
    folder = runfolder.RunFolder(tmp_path / "run").create()
    folder.record_invocation({"recipe": RECIPE}, runfolder.invocation(["spatialmix"]))
    proc = subprocess.run([sys.executable, "-c", code, head.address, folder.path, folder.invocation_token()],
                          capture_output=True, text=True, timeout=300, env=ray_env(ray_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok, missing, other = proc.stdout.strip().splitlines()[-3:]
    assert ok == "ok"
    assert missing.startswith(f"node x cannot see the run folder {folder.path}-elsewhere (no run folder at that path)")
    assert "(another run's run.json there)" in other and "mounts at the same path" in other


TWO_NODES = """
import sys
import ray.cluster_utils
cluster = ray.cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
worker = cluster.add_node(num_cpus=1)
print(cluster.address, worker.all_processes["raylet"][0].process.pid, flush=True)
for line in sys.stdin:
    if line.strip() == "remove":
        cluster.remove_node(worker, allow_graceful=False)   # SIGKILL to every process of the node
        print("removed", flush=True)
cluster.shutdown()
"""


@needs_ray
@pytest.mark.slow
def test_removing_a_worker_node_mid_run_loses_no_cell(tmp_path, ray_dir):
    """Two nodes on one machine (Ray's own test cluster, ray.cluster_utils): a head and a
    worker node, 1 CPU each. The worker node is removed (its processes killed) while it
    trains a cell; Ray runs the cell again on the head, from the cell's last checkpoint.
    (`ray start --address` refuses to join a cluster kept on loopback, hence cluster_utils.)"""
    nodes = subprocess.Popen([sys.executable, "-c", TWO_NODES], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=ray_env(ray_dir), start_new_session=True)
    folder, driver = folder_of(tmp_path), None
    try:
        address, raylet = nodes.stdout.readline().split()
        driver = start(ray_dir, tmp_path, "--executor", "ray", "--address", address, "--max-retries", "3")

        def on_worker():
            found = mid_cell(folder)
            if found and os.path.exists(f"/proc/{found[1]['pid']}"):
                with open(f"/proc/{found[1]['pid']}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == raylet:   # a child of the worker node's raylet
                        return found
            return None

        victim, started = wait_until(on_worker, "a cell past its first epoch on the worker node", driver)
        nodes.stdin.write("remove\n")
        nodes.stdin.flush()
        assert nodes.stdout.readline().strip() == "removed"
        _, stderr = driver.communicate(timeout=TIMEOUT)
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        nodes.stdin.close()
        try:
            nodes.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(nodes.pid, signal.SIGKILL)
    assert driver.returncode == 0, stderr[-3000:]
    rows = rows_of(folder)
    assert len(rows) == CELLS and len(folder.rows()) == CELLS
    again = [e for e in cell_log(folder, victim) if e["event"] == "cell_start"][1:]
    assert again and again[-1]["node"] != started["node"] and again[-1]["resumed_from_epoch"] >= 1
    assert int(rows[victim]["resumed_from_epoch"]) >= 1


@needs_ray
@pytest.mark.slow
def test_distribute_trains_each_cell_over_exactly_its_own_gpus(tmp_path, ray_dir, head):
    """--distribute --gpus-per-cell 2 on a node with 2 GPUs: each cell gets both, so cells
    train one after another, each with CUDA_VISIBLE_DEVICES naming exactly its two."""
    proc = run(ray_dir, tmp_path, "--executor", "ray", "--address", head.address, "--gpus-per-cell", "2",
               "--distribute", "--backend", "jax")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = folder_of(tmp_path)
    spans = []
    for end in (e for e in folder.events().events if e["event"] == "cell_end"):
        log = cell_log(folder, end["cell"])
        assert sorted(log[0]["gpus"]) == ["0", "1"] and log[0]["visible_devices"] == "0,1"
        spans.append((log[0]["time"], log[-1]["time"]))
    spans.sort()
    assert len(spans) == CELLS and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
