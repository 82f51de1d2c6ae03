"""The paper scale before a GPU hour is spent: dry runs, --download, precision, the GPU choices.

- The contract test dry-runs every recipe's paper scale (`recipes.core.dryrun`) on TFDS-format
  stand-ins that the test writes (tests/tfds_fixtures.py: every dataset a paper scale names),
  with the paper's models at full size: data, training, attacks, repeated tests, figure,
  check and report all run. Two cuts keep it to minutes on two CPU cores, and say so: the
  steps run at batch 2 (the user's dry run keeps the paper's batch), and each grid is cut to
  `dryrun.covering_grid` (every kind of value of every axis: each net, method and mode, and
  the first and last of each numeric axis) instead of all 463 cells.
- `--download` reaches TFDS's builder (imagenet2012's manual-download check answers, with no
  network needed), and the missing-dataset error names the flag.
- `--precision`: a smoke cell trains, saves and loads with plain `keras.models.load_model`
  under mixed_bfloat16 on each backend (marker `backends`), logits float32; mixed_float16
  compiles with loss scaling.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from recipes.core import data, dryrun, engine, runfolder, runtime
from recipes.core.registry import get_recipe, list_recipes
from tests import tfds_fixtures
from tests.helpers import run_python
from zoo.errors import SpatialmixError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPATIALMIX = os.path.join(os.path.dirname(sys.executable), "spatialmix")
DRY_BATCH = 2
TRAIN, TEST = 4, 2      # images per split of each stand-in: the test split is one batch of 2
# the datasets other than a recipe's own that get a dry run too (every stand-in is read by one),
# on one cell each: the last value of every axis (pixel-unshuffle's large model, d=16, w=512, k=7)
EXTRA_DATASETS = [("pixel-unshuffle", "mnist"), ("pixel-unshuffle", "fashion_mnist")]


def spatialmix(*args, cwd=None, timeout=600, env=None):
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([SPATIALMIX, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tfds"))
    tfds_fixtures.write(d, train=TRAIN, test=TEST)
    return d


def paper_datasets():
    names = set()
    for rid in list_recipes():
        scale = get_recipe(rid).scales["paper"]
        names |= {scale.dataset, *scale.datasets}
    return {n for n in names if data.dataset_spec(n).source == "tfds"}


def test_the_fixtures_cover_every_paper_dataset():
    assert paper_datasets() == set(tfds_fixtures.NAMES)
    read = {get_recipe(rid).scales["paper"].dataset for rid in list_recipes()} | {d for _, d in EXTRA_DATASETS}
    assert set(tfds_fixtures.NAMES) <= read, "a stand-in that no dry run reads"


def test_covering_grid_keeps_every_kind_of_value():
    arms = dryrun.covering_grid(get_recipe("spatial-ablation").scales["paper"])["arm"]
    assert arms == ["vgg16:none:0", "vgg16:shuffle:13", "vgg16:gap_fc:13", "vgg16:conv1x1:13",
                    "resnet50:none:0", "resnet50:shuffle:16", "resnet50:gap_fc:16", "resnet50:conv1x1:16"]
    arms = dryrun.covering_grid(get_recipe("imagenet-1x1").scales["paper"])["arm"]
    assert {a.split(":")[0] for a in arms} == {"resnet152", "resnet50", "vgg16", "mobilenet_v2", "squeezenet"}
    assert len(arms) == 10 and "resnet152:conv1x1:46" in arms
    grid = dryrun.covering_grid(get_recipe("pixel-unshuffle").scales["paper"])
    assert grid == {"mode": ["full", "chans"], "depth": [4, 16], "width": [128, 512], "kernel_size": [3, 7]}
    assert dryrun.covering_grid(get_recipe("static-filters").scales["paper"]) == \
        get_recipe("static-filters").scales["paper"].grid


def test_the_cut_reaches_a_nets_own_budget():
    """Paper B's ImageNet recipes give each net its own epochs and batch (`by_net`); the dry
    run cuts those too, or ResNet-152 would take its 2 steps at batch 256 of 224×224 images."""
    scale = get_recipe("imagenet-1x1").scales["paper"]
    cut = dryrun.cut_scale(scale, "imagenet2012", batch_size=DRY_BATCH)
    assert set(cut.budget["by_net"]) == set(scale.budget_for("imagenet2012")["by_net"])
    for own in cut.budget["by_net"].values():
        assert (own["epochs"], own["steps_per_epoch"], own["test_batches"], own["batch_size"]) == (1, 2, 2, DRY_BATCH)
    # a cap (a paper-scale dry run on a CPU host) lowers each net's own batch to it, and no batch below it
    capped = dryrun.cut_scale(scale, "imagenet2012", batch_cap=300)
    own = scale.budget_for("imagenet2012")["by_net"]
    assert {net: b["batch_size"] for net, b in capped.budget["by_net"].items()} == \
        {net: min(300, b["batch_size"]) for net, b in own.items()}
    assert capped.budget["by_net"]["squeezenet"]["batch_size"] == 300 and own["resnet50"]["batch_size"] == 256


def _cases():
    cases = [(rid, None) for rid in list_recipes()] + EXTRA_DATASETS
    return [pytest.param(rid, ds, id=rid + (f"@{ds}" if ds else "")) for rid, ds in cases]


def _grid(scale, extra):
    return {axis: [values[-1]] for axis, values in scale.grid.items()} if extra else dryrun.covering_grid(scale)


@pytest.mark.parametrize("recipe_id,dataset", _cases())
def test_paper_scale_dry_run(recipe_id, dataset, tfds_dir, tmp_path):
    """The paper path end to end on the stand-ins: every cell of the covering grid trains its
    full-size net for 2 steps, tests, and the figure, verdict and report follow."""
    recipe = get_recipe(recipe_id)
    extra = dataset is not None
    scale, dataset = engine.resolve(recipe, "paper", dataset)
    grid = _grid(scale, extra)
    result = dryrun.dry_run(recipe, "paper", dataset, tfds_dir, runs_dir=str(tmp_path), grid=grid,
                            batch_size=DRY_BATCH)
    try:
        folder = runfolder.RunFolder(result.run_dir)
        rows = folder.rows()
        cells = engine.expand_grid(dryrun.cut_scale(scale, dataset, grid=grid))
        assert sorted(r["cell"] for r in rows) == sorted(engine.cell_id(c, s) for c, s in cells)
        assert folder.status() == "finished"
        with open(folder.file(runfolder.FIGURE), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        with open(folder.file(runfolder.REPORT), encoding="utf-8") as f:
            report = f.read()
        assert recipe.claim in report and "Dry run" in report
        assert "epochs 1," in report and "steps_per_epoch 2," in report and "test_batches 2" in report
        assert not any(os.path.exists(folder.cell_model(r["cell"])) for r in rows), "2-step models are removed"
        # the cost of the real run: the whole grid, the real budget, a measured step for every trained cell
        budget = scale.budget_for(dataset)
        cost = result.cost
        assert cost.cells == len(engine.expand_grid(scale)) and cost.cells_measured == len(rows)
        assert cost.epochs == budget.get("epochs", 0) and cost.batch_size == budget.get("batch_size")
        trained = [r for r in rows if r.get("train_step_s") not in (None, "")]
        if cost.epochs:
            assert len(trained) == len(rows) and all(float(r["train_step_s"]) > 0 for r in trained)
            steps = budget.get("steps_per_epoch")
            assert cost.steps_per_epoch == (steps if isinstance(steps, int) else -(-TRAIN // budget["batch_size"]))
            assert cost.seconds > 0
        for net in cost.nets:   # a net with its own budget is costed by it
            own = budget.get("by_net", {}).get(net.net)
            if own:
                assert (net.epochs, net.batch_size) == (own["epochs"], own["batch_size"])
        text = dryrun.format_cost(cost)
        assert "ETA" in text
        assert len(rows) == cost.cells or f"ran {len(rows)} of the {cost.cells} cells" in text
        if cost.epochs:
            assert f"{cost.cells} cells × {cost.epochs} epochs" in text and f"timed at batch {DRY_BATCH}" in text
        else:
            assert f"{cost.cells} cells that train nothing" in text
    finally:
        dryrun.remove(result.run_dir)
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------- the command line


def test_dry_run_from_the_command_line_leaves_the_runs_dir_alone(tmp_path):
    """`spatialmix run ... --dry-run` (smoke scale: seconds) writes a throwaway folder, draws
    the figure and prints the real run's cost; the runs dir stays untouched."""
    runs = tmp_path / "runs"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = spatialmix("run", "convmixer-mixing", "--scale", "smoke", "--dry-run", "--runs-dir", str(runs),
                      "--quiet", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not runs.exists()
    out = proc.stdout
    assert "what the real run costs" in out and "3 cells × 2 epochs × 4 steps per epoch (batch 64)" in out
    assert "ETA" in out and "convmixer" in out
    line = next(line for line in out.splitlines() if line.startswith("dry-run folder"))
    run_dir = line.split(": ", 1)[1].split(" (")[0]
    assert run_dir.startswith(str(scratch))
    assert os.path.getsize(os.path.join(run_dir, runfolder.FIGURE)) > 0
    meta = runfolder.RunFolder(run_dir).meta()
    assert "--dry-run" in meta["command"] and meta["invocations"][-1]["runtime"]["precision"] == "float32"


@pytest.mark.slow
def test_the_acceptance_dry_run_at_paper_scale(tfds_dir, tmp_path):
    """The issue's own command on the whole grid. On a host without a GPU its steps run at batch
    64 (CPU_DRY_RUN_BATCH), and it says so: at the paper's 512 the depth-16 ConvMixer (width 128,
    patch 1, 32×32) holds more activations for its backward pass than a 24 GB CPU host has."""
    proc = spatialmix("run", "convmixer-mixing", "--scale", "paper", "--dataset", "cifar10", "--dry-run",
                      "--data-dir", tfds_dir, "--quiet", cwd=tmp_path, timeout=3600, env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = len(engine.expand_grid(get_recipe("convmixer-mixing").scales["paper"]))   # 4 depths × 3 modes × 2 seeds
    assert f"{cells} cells × 25 epochs × 1 steps per epoch (batch 512)" in proc.stdout and "ETA" in proc.stdout
    assert "timed at batch 64, not the run's 512" in proc.stdout
    run_dir = next(line for line in proc.stdout.splitlines() if line.startswith("dry-run folder")).split(": ", 1)[1]
    assert os.path.getsize(os.path.join(run_dir.split(" (")[0], runfolder.FIGURE)) > 0


def test_missing_dataset_error_names_download(tmp_path):
    empty = tmp_path / "tfds"
    empty.mkdir()
    for extra in ([], ["--dry-run"]):
        proc = spatialmix("run", "convmixer-mixing", "--scale", "paper", "--data-dir", str(empty),
                          "--runs-dir", str(tmp_path / "runs"), *extra, cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "--download" in lines[0] and "cifar10" in lines[0] and str(empty) in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["tfds"] and not os.listdir(empty)


def test_download_flag_reaches_the_tfds_builder(tmp_path):
    """With --download, TFDS's own builder prepares the set: for imagenet2012 it first looks for
    the archives in <data-dir>/downloads/manual (no network needed to see it answer)."""
    empty = tmp_path / "tfds"
    empty.mkdir()
    proc = spatialmix("run", "imagenet-1x1", "--scale", "paper", "--data-dir", str(empty), "--download",
                      "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "TFDS could not download and prepare 'imagenet2012'" in lines[0]
    assert f"{empty}/downloads/manual" in lines[0] and "ILSVRC2012_img_train.tar" in lines[0]
    assert not (tmp_path / "runs").exists()
    assert (empty / "downloads").is_dir()   # TFDS's download manager ran
    # a prepared set is left as it is: --download does nothing more
    from recipes.core.data import tfds as tfds_data

    tfds_fixtures.write(str(empty), ["mnist"])
    assert tfds_data.prepare("mnist", str(empty)) is False


def test_precision_errors_and_resume(tmp_path):
    bad = spatialmix("run", "convmixer-mixing", "--scale", "smoke", "--precision", "fp8", "--runs-dir",
                     str(tmp_path / "runs"), cwd=tmp_path)
    assert bad.returncode == 2 and "'fp8'" in bad.stderr and "mixed_bfloat16" in bad.stderr
    # a run folder that trained under mixed_bfloat16 does not resume under float32
    recipe = get_recipe("convmixer-mixing")
    folder = runfolder.RunFolder(engine.run_dir_for(str(tmp_path / "runs"), recipe, "smoke", "digits", 0))
    folder.create()
    folder.record_invocation({"recipe": recipe.id, "scale": "smoke", "dataset": "digits", "backend": "torch"},
                             runfolder.invocation(["spatialmix"], {"precision": "mixed_bfloat16"}))
    proc = spatialmix("run", "convmixer-mixing", "--scale", "smoke", "--precision", "float32", "--backend", "torch",
                      "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--precision mixed_bfloat16" in lines[0], proc.stderr
    assert folder.rows() == []


# --------------------------------------------------------------------------- precision


def test_precision_choice():
    """auto is float32 except at paper scale on a GPU; a named precision is kept."""
    for scale in ("smoke", "cpu"):
        assert runtime.resolve_precision("auto", scale) == "float32"
    paper = runtime.resolve_precision("auto", "paper")
    assert paper == "float32" if not runtime.gpus() else paper.startswith("mixed_")
    assert runtime.resolve_precision("mixed_float16", "cpu") == "mixed_float16"
    with pytest.raises(SpatialmixError, match="'fp8'.*mixed_bfloat16"):
        runtime.resolve_precision("fp8")


def _smoke_cell(tmp_path, recipe_id="convmixer-mixing"):
    recipe = get_recipe(recipe_id)
    scale, dataset = engine.resolve(recipe, "smoke", None)
    config, seed = engine.expand_grid(scale)[0]
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    return engine.Cell(engine.cell_id(config, seed), config, seed, 1, 1, recipe, "smoke", scale, dataset, None,
                       str(cell_dir), lambda event, **fields: fields)


def test_mixed_float16_compiles_with_loss_scaling(tmp_path):
    from recipes.core.tasks import classifier_setup

    try:
        runtime.set_precision("mixed_float16")
        cell = _smoke_cell(tmp_path)
        run = classifier_setup(cell, "convmixer", {**cell.model, "depth": 1, "mode": "full"}, family="convmixer")
        model = run.build()
        run.compile_model(model)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.get_layer("block1_channel").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    finally:
        runtime.set_precision("float32")


@pytest.mark.backends
def test_mixed_bfloat16_smoke_cell_trains_saves_and_loads_plainly(tmp_path):
    """A smoke cell under mixed_bfloat16 on this backend: it trains, its model.keras opens with
    plain keras.models.load_model in a fresh interpreter that never imports this project,
    computes in bfloat16 there and returns float32 logits."""
    from recipes.core import tasks

    try:
        runtime.set_precision("mixed_bfloat16")
        cell = _smoke_cell(tmp_path)
        metrics = tasks.train_classifier(cell, "convmixer", {**cell.model, "depth": 1, "mode": "chans"},
                                         family="convmixer")
    finally:
        runtime.set_precision("float32")
    assert np.isfinite(metrics["test_loss"]) and 0.0 <= metrics["test_accuracy"] <= 1.0
    code = f"""
import json, keras, numpy as np
m = keras.models.load_model({cell.model_path!r})
x = np.random.default_rng(0).random((3, *m.input_shape[1:]), dtype=np.float32)
y = m(x, training=False)
print(json.dumps({{"out": keras.backend.standardize_dtype(y.dtype), "policy": m.get_layer("block1_channel").dtype_policy.name,
                  "finite": bool(np.isfinite(keras.ops.convert_to_numpy(y)).all()), "trainable": [l.trainable for l in m.layers]}}))
"""
    proc = run_python(code, keras.backend.backend(), cwd=str(tmp_path), env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["out"] == "float32" and loaded["policy"] == "mixed_bfloat16" and loaded["finite"]
    assert not all(loaded["trainable"]), "chans mode's frozen layers stay frozen"


# --------------------------------------------------------------------------- the GPU choices


def test_the_gpu_choices_differ_from_the_cpu_choices():
    for backend in ("tensorflow", "torch", "jax"):
        assert set(runtime.choices(backend, "cpu")) <= set(runtime.choices(backend, "gpu"))
    assert runtime.choices("tensorflow", "gpu")["jit_compile"] and not runtime.choices("tensorflow", "cpu")["jit_compile"]
    assert not runtime.choices("jax", "gpu")["fast_ops"] and runtime.choices("jax", "cpu")["fast_ops"]
    assert runtime.choices("torch", "gpu")["cudnn_benchmark"]
    settings = runtime.configure_runtime()
    assert settings["device"] == runtime.device_kind() and settings["precision"] == "float32"
    assert runtime.compile_kwargs() == runtime.compile_kwargs(device=settings["device"])


def test_tensorflow_on_a_gpu_compiles_the_zoo_with_xla():
    """What TensorFlow gets on a GPU (jit_compile=True) compiles every zoo family's training step,
    the shuffle layers included: XLA runs on the CPU too, so this is checked here."""
    code = """
import numpy as np, keras, zoo
from recipes.core import runtime
from zoo.registry import MODELS, tiny_config
kwargs = runtime.compile_kwargs(device="gpu")
assert kwargs == {"jit_compile": True}, kwargs
done = []
for name in ("convmixer", "vgg16", "resnet50", "squeezenet"):
    config = tiny_config(name)
    if name == "vgg16":
        config.update(spatial_method="shuffle", k=2)
    model = zoo.create_model(name, **config)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **kwargs)
    x = np.random.default_rng(0).random((4, *model.input_shape[1:]), dtype=np.float32)
    y = np.zeros(4, dtype="int32")
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]), (name, logs)
    done.append(name)
print(done)
"""
    proc = run_python(code, "tensorflow", timeout=900, cwd=ROOT, env={"PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "squeezenet" in proc.stdout
