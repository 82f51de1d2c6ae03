"""Making presets: `spatialmix zoo build` and `spatialmix zoo export RUN_DIR --cell ID`.

A preset is a trained cell of a recipe run. `export_cell` turns any cell of any run folder
into a registry record (zoo/presets.py) plus a copy of its plain `model.keras`.

`build` remakes the shipped presets from scratch with the engine itself: it runs the
internal recipe `zoo-presets` (one cell per preset, seed 0, the same code path as every
recipe: run.json, events.jsonl, results.csv, cells/<id>/model.keras), then exports every
cell into `zoo/checkpoints/` and rewrites `zoo/checkpoints/presets.json`. It trains on
TensorFlow by default: for these tiny models it was 8-30x faster per epoch than JAX or
PyTorch here (ConvMixer-16/2 on textures: 1.3 s vs 12 s and 41 s per epoch), and
TensorFlow's op determinism is switched on. Training is seeded,
so a rebuild on the same backend gives the same weights; a `.keras` file records the time
it was saved, so its bytes and sha256 change anyway, and build reports, for each preset,
whether the weights equal the previous file's.

The unshuffler presets are trained on a pixel-permutation task (paper A §4.4): a fixed,
seeded permutation of the H·W pixel positions is applied to every image, the model learns
to put the pixels back (MSE), and the record's metric is the test PSNR in dB,
10·log10(1 / MSE) over the whole test split (images in [0, 1]).
"""

import dataclasses
import json
import os
import time
import zipfile

import numpy as np

from recipes.core import claims, runfolder
from recipes.core.engine import Recipe, Scale, cell_id
from zoo.errors import SpatialmixError, check

RECIPE_ID = "zoo-presets"
PERMUTATION_SEED = 0


@dataclasses.dataclass(frozen=True)
class PresetSpec:
    """What one shipped preset is: model, config, mode, data set, and its training budget."""

    model: str
    config: dict
    mode: str
    dataset: str
    budget: dict
    family: str                      # the training schedule (recipes.core.train.make_optimizer)
    task: str = "classification"     # or "unshuffle"

    @property
    def name(self):
        return preset_name(self.model, self.config, self.mode, self.dataset)


def preset_name(model, config, mode, dataset):
    """timm-style `arch.tag`: e.g. convmixer_32_2_k5_p2.chans_textures."""
    c = config
    if model == "convmixer":
        arch = f"convmixer_{c['width']}_{c['depth']}_k{c['kernel_size']}_p{c['patch_size']}"
    elif model == "convmixer_unshuffler":
        arch = f"convmixer_unshuffler_{c['width']}_{c['depth']}_k{c['kernel_size']}"
    elif model.startswith("sep_resnet_cifar"):
        arch = f"sep_resnet{6 * c['depth'] + 2}_w{c['width']}_d{c.get('depth_multiplier', 9)}_k{c.get('kernel_size', 3)}"
    else:
        size = "_".join(str(c[k]) for k in ("width", "depth") if k in c)
        arch = model + (f"_{size}" if size else "")
    return f"{arch}.{mode}_{dataset.replace('/', '_')}"


_CONVMIXER = {"width": 32, "depth": 2, "kernel_size": 5, "patch_size": 2}
_CONVMIXER_BUDGET = {"epochs": 10, "batch_size": 128, "lr": 0.01, "weight_decay": 0.01}
_RESNET = {"depth": 1, "width": 8, "depth_multiplier": 9, "kernel_size": 3}
_RESNET_BUDGET = {"epochs": 8, "batch_size": 128, "lr": 0.1, "weight_decay": 5e-4}
_UNSHUFFLER = {"width": 32, "depth": 2, "kernel_size": 5}
_UNSHUFFLER_BUDGET = {"epochs": 20, "batch_size": 64, "lr": 0.01, "weight_decay": 0.01}

SPECS = tuple(
    [PresetSpec("convmixer", _CONVMIXER, m, "textures", _CONVMIXER_BUDGET, "convmixer") for m in ("full", "chans", "space")]
    + [PresetSpec("sep_resnet_cifar", _RESNET, m, "textures", _RESNET_BUDGET, "resnet") for m in ("full", "chans", "space")]
    + [PresetSpec("convmixer_unshuffler", _UNSHUFFLER, m, "digits", _UNSHUFFLER_BUDGET, "convmixer", "unshuffle")
       for m in ("full", "chans")]
)
SPECS_BY_NAME = {s.name: s for s in SPECS}


# --------------------------------------------------------------------------- the build recipe


def _run_cell(cell):
    spec = SPECS_BY_NAME[cell.config["preset"]]
    scale = Scale(dataset=spec.dataset, grid={}, budget=dict(spec.budget))
    sub = dataclasses.replace(cell, dataset=spec.dataset, scale=scale)
    config = {**spec.config, "mode": spec.mode}
    if spec.task == "unshuffle":
        metrics = train_unshuffler(sub, config, spec.family)
    else:
        from recipes.core.tasks import train_classifier

        metrics = train_classifier(sub, spec.model, config, family=spec.family)
    return {"model": spec.model, "model_config": json.dumps(_full_config(spec, sub.seed)),
            "preset_dataset": spec.dataset, **metrics}


def _full_config(spec, seed):
    from recipes.core import data

    ds = data.dataset_spec(spec.dataset)
    config = {**spec.config, "mode": spec.mode, "filters": "random", "seed": seed,
              "input_shape": list(ds.image_shape), "mean": list(ds.mean), "std": list(ds.std)}
    if spec.task == "classification":
        config["num_classes"] = ds.num_classes
    return config


def _check(rows, thresholds):
    done = ", ".join(f"{r['preset']} {_metric_text(r)}" for r in rows)
    return claims.Finding(claims.INCONCLUSIVE, f"presets are models, not a claim: {len(rows)} made ({done}).")


def _metric_text(row):
    if row.get("test_psnr"):
        return f"{float(row['test_psnr']):.2f} dB"
    return f"{100 * float(row['test_accuracy']):.1f}%"


def _figure(rows, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=110, gridspec_kw={"width_ratios": [3, 1]})
    cls = [r for r in rows if r.get("test_accuracy")]
    uns = [r for r in rows if r.get("test_psnr")]
    axes[0].barh([r["preset"] for r in cls], [100 * float(r["test_accuracy"]) for r in cls], color="tab:blue")
    axes[0].set_xlabel("test accuracy (%)")
    axes[1].barh([r["preset"].split(".")[1] for r in uns], [float(r["test_psnr"]) for r in uns], color="tab:green")
    axes[1].set_xlabel("unshuffler test PSNR (dB)")
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("spatialmix zoo presets")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def build_recipe(names=None):
    """The internal recipe whose cells are the presets (all, or `names`)."""
    names = list(names or SPECS_BY_NAME)
    for name in names:
        check(name in SPECS_BY_NAME, f"unknown preset {name!r}; choose one of: {', '.join(SPECS_BY_NAME)}")
    scale = Scale(dataset="textures", datasets=("digits",), grid={"preset": names}, budget={}, seeds=(0,),
                  note="Each cell trains one preset (model, mode, data set and budget in "
                       "recipes/core/presets_build.py); seed 0.")
    return Recipe(id=RECIPE_ID, title="the zoo's shipped presets", paper="-", claim="(none: presets are models)",
                  metric="test_accuracy", scales={"cpu": scale}, run_cell=_run_cell, figure=_figure, check=_check)


def build(runs_dir="runs", names=None, dest_dir=None, progress=None, argv=None):
    """Train every preset (resuming an interrupted build), export them into `dest_dir`
    (default: zoo/checkpoints) and rewrite the registry. Returns [(name, record, note)]."""
    import keras

    from recipes.core.engine import run_recipe
    from zoo import presets

    recipe = build_recipe(names)
    if keras.backend.backend() == "tensorflow":  # the same weights on every rebuild
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    run_dir, _ = run_recipe(recipe, "cpu", "textures", runs_dir, 0, None, argv=argv, progress=progress)
    dest_dir = dest_dir or presets.CHECKPOINTS_DIR
    registry_path = os.path.join(dest_dir, "presets.json")
    found = presets.records(registry_path)
    out = []
    for name in recipe.scales["cpu"].grid["preset"]:
        cid = cell_id({"preset": name}, 0)
        old = os.path.join(dest_dir, found[name]["file"]) if name in found and "file" in found[name] else None
        old_weights = _weights(old) if old and os.path.exists(old) else None
        record = export_cell(run_dir, cid, os.path.join(dest_dir, f"{name}.keras"), name=name)
        record["made_by"] = "spatialmix zoo build"
        found[name] = record
        note = "new"
        if old_weights is not None:
            new_weights = _weights(os.path.join(dest_dir, record["file"]))
            same = len(old_weights) == len(new_weights) and all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(old_weights, new_weights))
            note = "same weights as before" if same else "weights differ from the previous file"
        out.append((name, record, note))
    presets.write_records(found, registry_path)
    return run_dir, out


def _weights(path):
    """The model's weight arrays in a .keras file (not optimizer state), from its HDF5 payload."""
    import h5py

    arrays = []
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as raw:
        import io

        with h5py.File(io.BytesIO(raw.read()), "r") as h5:
            h5.visititems(lambda key, obj: arrays.append(np.asarray(obj))
                          if isinstance(obj, h5py.Dataset) and key.startswith("layers/") else None)
    return arrays


# --------------------------------------------------------------------------- the unshuffle task


def train_unshuffler(cell, model_config, family="convmixer"):
    """The pixel-unshuffle recipe's task (recipes.core.unshuffle: the same permutation,
    training and checkpoints) with PERMUTATION_SEED. The record's `test_psnr` is the global
    one, 10·log10(1 / MSE) over every test pixel of the unclipped prediction, which a user
    recomputes from `model.predict` with nothing of spatialmix; the task's own mean
    per-image PSNR is kept as `test_psnr_per_image`."""
    import keras

    from recipes.core import data, unshuffle

    if family != "convmixer":
        raise SpatialmixError(f"the unshuffle task trains with the convmixer schedule, not {family!r}")
    metrics = unshuffle.train_unshuffler(cell, model_config, permutation_seed=PERMUTATION_SEED)
    model = keras.models.load_model(os.path.join(cell.dir, runfolder.MODEL), compile=False)
    x_test, _ = data.load_arrays(cell.dataset, "test")
    x_test = np.asarray(x_test, np.float64)
    perm = unshuffle.permutation(x_test.shape[1], x_test.shape[2], PERMUTATION_SEED)
    pred = model.predict(unshuffle.scramble(x_test.astype(np.float32), perm), batch_size=256, verbose=0)
    mse = float(np.mean((np.asarray(pred, np.float64) - x_test) ** 2))
    return {**metrics, "test_psnr": round(float(10.0 * np.log10(1.0 / max(mse, 1e-12))), 4),
            "test_psnr_per_image": metrics["test_psnr"], "test_mse": mse, "permutation_seed": PERMUTATION_SEED}


# --------------------------------------------------------------------------- export


def export_cell(run_dir, cell, dest, name=None):
    """Copy cell `cell`'s `model.keras` of run folder `run_dir` to `dest` (without compile
    state) and return its
    preset record (with `file` = the copy's basename). Raises SpatialmixError for a run
    folder, cell or checkpoint that is not there."""
    import keras

    from zoo import presets
    from zoo.registry import list_models, model_defaults

    folder = runfolder.RunFolder(run_dir)
    meta = folder.meta()
    check(meta is not None, f"{run_dir} is not a run folder (no readable run.json)")
    rows = {r["cell"]: r for r in folder.rows()}
    check(cell in rows, f"cell {cell!r} has no results row in {run_dir}; finished cells: "
                        f"{'; '.join(rows) or 'none'}")
    row = rows[cell]
    source = folder.cell_model(cell)
    check(os.path.isfile(source), f"cell {cell!r} of {run_dir} has no model.keras")
    try:
        model = keras.models.load_model(source, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001
        raise SpatialmixError(f"{source} does not load: {' '.join(str(e).split())[:200]}") from None
    model_name = row.get("model") or _model_from_name(model.name, list_models())
    if row.get("model_config"):
        config = json.loads(row["model_config"])
    else:
        config = _config_from_run(meta, row, model_name, model_defaults(model_name))
    dataset = row.get("preset_dataset") or row.get("dataset") or meta.get("dataset")
    mode = config.get("mode") or row.get("mode") or "full"
    if row.get("test_psnr"):
        metric, task = "test_psnr", "unshuffle"
    else:
        metric, task = "test_accuracy", "classification"
    name = name or preset_name(model_name, config, mode, dataset)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".tmp.keras"
    # Saved again from the loaded model: the same weights and graph, but no compile config
    # (the cell's file can name the training schedule, a class of this project, which a
    # plain `keras.models.load_model(path)` without spatialmix could not rebuild).
    model.save(tmp)
    os.replace(tmp, dest)
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    record = {
        "model": model_name, "config": config, "mode": mode, "filters": config.get("filters", "random"),
        "dataset": dataset, "task": task, "metric": metric, "value": float(row[metric]),
        "params": int(model.count_params()), "params_trainable": trainable,
        "sha256": presets.sha256_of(dest), "bytes": os.path.getsize(dest), "file": os.path.basename(dest),
        "backend": row.get("backend") or meta.get("backend"), "run": os.path.abspath(run_dir), "cell": cell,
        "recipe": meta.get("recipe"), "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if task == "unshuffle":
        record["permutation_seed"] = int(float(row.get("permutation_seed") or PERMUTATION_SEED))
    return record


def _model_from_name(keras_name, names):
    """The zoo model a checkpoint came from, by its Keras name (e.g. convmixer_64_4 -> convmixer)."""
    matches = [n for n in names if keras_name == n or keras_name.startswith(n + "_")]
    check(matches, f"cannot tell which zoo model {keras_name!r} is; it is not one of: {', '.join(names)}")
    return max(matches, key=len)


def _config_from_run(meta, row, model_name, defaults):
    """The cell's model config: the recipe's fixed model config plus the cell's grid values."""
    from recipes.core.registry import get_recipe

    config = {}
    try:
        scale = get_recipe(meta["recipe"]).scales[meta["scale"]]
        config.update(scale.model_for(meta["dataset"]))
    except SpatialmixError:
        pass
    for key, value in row.items():
        if key in defaults and key not in ("seed",) and value not in ("", None):
            config[key] = _parse(value)
    config.setdefault("seed", int(row.get("seed", 0) or 0))
    return config


def _parse(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
