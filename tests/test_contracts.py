"""Contract tests that grow with the registries (as timm's tests iterate over `list_models()`).

A new zoo model or recipe is tested here by being registered: no list in this file names one.
- every `zoo.list_models()` entry: a tiny build, a forward pass, every mode it supports, and a
  `.keras` save/load round trip (marker `backends`: this runs on all three backends);
- every recipe of `recipes.core.registry.list_recipes()`: its three scales, its datasets, an
  inconclusive verdict on no rows, no Keras import at module import, a row in README.md.
"""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from recipes.core import data
from recipes.core.choices import SCALES
from recipes.core.registry import get_recipe, list_recipes, recipe_module
from tests.helpers import to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- zoo models


def _tiny(name, **extra):
    config = {**zoo.tiny_config(name), **extra}
    return zoo.create_model(name, **config), config


@pytest.mark.backends
@pytest.mark.parametrize("name", zoo.list_models())
def test_zoo_model_builds_runs_and_round_trips(name, tmp_path):
    from zoo.registry import MODELS

    assert MODELS[name].tiny, f"{name}: its ModelEntry needs a tiny config for these tests"
    assert MODELS[name].description
    for mode in MODELS[name].modes:
        keras.utils.set_random_seed(0)
        model, config = _tiny(name, mode=mode)
        shape = model.input_shape[1:]
        x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
        out = to_numpy(model(x, training=False))
        assert out.shape[0] == 2 and np.isfinite(out).all(), (name, mode, out.shape)
        if mode != "full":
            counts = zoo.count_params(model)
            frozen_role = "spatial" if mode == "chans" else "channel"
            assert counts[f"{frozen_role}_frozen"] > 0 and counts[f"{frozen_role}_trainable"] == 0, (name, mode)
        trainable = {layer.name: layer.trainable for layer in model.layers}
        path = str(tmp_path / f"{name}-{mode}.keras")
        model.save(path)
        again = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(to_numpy(again(x, training=False)), out, rtol=1e-5, atol=1e-5)
        assert {layer.name: layer.trainable for layer in again.layers} == trainable
        assert again.count_params() == model.count_params()


@pytest.mark.parametrize("name", zoo.list_models())
def test_zoo_model_rejects_unsupported_modes_and_unknown_config(name):
    from zoo.registry import MODELS

    for mode in set(zoo.MODES) - set(MODELS[name].modes):
        with pytest.raises(zoo.SpatialmixError, match=mode):
            _tiny(name, mode=mode)
    with pytest.raises(zoo.SpatialmixError, match="no_such_option"):
        _tiny(name, no_such_option=1)


# --------------------------------------------------------------------------- recipes


def _readme_recipe_ids():
    """Ids in backticks in the first column of README.md's recipe table rows."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    ids = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            ids.update(re.findall(r"`([a-z0-9-]+)`", first))
    return ids


def test_registry_finds_the_paper_modules():
    ids = list_recipes()
    assert ids, "no recipe found"
    for rid in ids:
        module = recipe_module(rid)
        assert re.fullmatch(r"recipes\.paper_[ab]\.[a-z0-9_]+", module), module
        assert module.rsplit(".", 1)[1].replace("_", "-") == rid


@pytest.mark.parametrize("rid", list_recipes())
def test_recipe_contract(rid):
    recipe = get_recipe(rid)
    assert recipe.id == rid and recipe.title and recipe.claim and recipe.paper
    assert set(recipe.scales) == set(SCALES), f"{rid} must define every scale: {SCALES}"
    catalogue = set(data.dataset_names())
    for name, scale in recipe.scales.items():
        for dataset in (scale.dataset, *scale.datasets, *scale.overrides):
            assert dataset in catalogue, f"{rid} [{name}] names dataset {dataset!r}, not in the catalogue"
        assert scale.grid, f"{rid} [{name}] has an empty grid"
        assert scale.seeds, f"{rid} [{name}] has no seeds"
    assert len(recipe.scales["cpu"].seeds) >= 2, f"{rid}: cpu scale needs at least 2 seeds"
    for name in recipe.scales:
        verdict = recipe.check([], recipe.thresholds.at(name))
        assert verdict.verdict == "inconclusive", f"{rid}: check([]) must be inconclusive, got {verdict.verdict!r}"
    for threshold in recipe.thresholds.items.values():
        assert set(threshold.by_scale) <= set(SCALES), f"{rid}: a threshold names an unknown scale"
        assert threshold.meaning, f"{rid}: every threshold says what it means"


@pytest.mark.parametrize("rid", list_recipes())
def test_recipe_module_imports_without_keras(rid):
    code = (f"import sys, importlib; importlib.import_module({recipe_module(rid)!r}); "
            "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]; "
            "print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "", f"importing {rid} imported {proc.stdout.strip()}: import them inside functions"


@pytest.mark.parametrize("rid", list_recipes())
def test_readme_recipe_table_lists_the_recipe(rid):
    assert rid in _readme_recipe_ids(), f"README.md's recipe table has no row for `{rid}`"


@pytest.mark.parametrize("rid", list_recipes())
def test_recipe_smoke_run_writes_every_artefact(rid, tmp_path):
    """`--scale smoke` end to end, in this process (the CLI path is tested once in test_cli.py):
    one results row per cell, the cells' plain checkpoints, the figure, the report, the events."""
    from recipes.core import runfolder
    from recipes.core.engine import expand_grid, run_recipe

    recipe = get_recipe(rid)
    run_dir, verdict = run_recipe(recipe, "smoke", runs_dir=str(tmp_path), argv=["test", rid])
    cells = expand_grid(recipe.scales["smoke"])
    folder = runfolder.RunFolder(run_dir)
    rows = folder.rows()
    assert len(rows) == len(cells) and {r["scale"] for r in rows} == {"smoke"}
    assert all(row.get(recipe.metric) not in (None, "") for row in rows), \
        f"{rid}: its metric column {recipe.metric!r} is missing or empty in the smoke rows"
    assert verdict.verdict in ("holds", "does not hold", "inconclusive")
    frozen = folder.frozen_verdict()
    assert frozen["verdict"] == verdict.verdict and frozen["cells"] == len(rows)
    assert frozen["thresholds"] == recipe.thresholds.values("smoke") and len(frozen["check_sha256"]) == 64
    with open(os.path.join(run_dir, "figure.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(run_dir, "report.md"), encoding="utf-8") as f:
        report = f.read()
    assert f"**Measured here:** {verdict.verdict}." in report and recipe.claim in report
    events = folder.events().events
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and events[-1]["status"] == "finished"
    assert kinds.count("cell_end") == len(cells)
