"""Pretrained zoo checkpoints: the registry, its sha256 checks, URL presets through a real
HTTP server, export from a run folder, and every shipped preset loading under every
backend with no import of this project and reaching its recorded metric."""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from zoo import presets
from zoo.errors import SpatialmixError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = {n: r for n, r in presets.records().items() if "file" in r}


def test_registry_is_plain_data_and_lists_at_least_eight_small_presets():
    code = ("import sys, zoo; names = zoo.list_pretrained(); "
            "print(len(names), 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    count, keras_loaded = out.stdout.split()
    assert int(count) >= 8 and keras_loaded == "False", out.stderr
    kinds = {(r["model"], r["mode"]) for r in SHIPPED.values()}
    for mode in ("full", "chans", "space"):
        assert ("convmixer", mode) in kinds and ("sep_resnet_cifar", mode) in kinds
    assert {("convmixer_unshuffler", "full"), ("convmixer_unshuffler", "chans")} <= kinds
    for name, r in SHIPPED.items():
        assert re.fullmatch(r"[a-z0-9_]+\.(full|chans|space)_[a-z0-9_]+", name), name  # timm's arch.tag
        assert name.endswith(f".{r['mode']}_{r['dataset']}")
        presets.validate_record(name, r)
        assert r["bytes"] < 400_000, f"{name} is {r['bytes']} bytes: keep shipped presets small"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_sha256_passes_for_every_shipped_file(name):
    record = SHIPPED[name]
    assert presets.check_file(name, record, presets.shipped_path(record))


def test_tampered_truncated_and_missing_copies_are_refused(tmp_path):
    name, record = sorted(SHIPPED.items())[0]
    data = open(presets.shipped_path(record), "rb").read()
    tampered = tmp_path / "tampered.keras"
    tampered.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    for path, words in ((tampered, "sha256"), (truncated, "truncated"), (tmp_path / "gone.keras", "missing")):
        with pytest.raises(SpatialmixError) as info:
            presets.pretrained(name, record={**record, "file": str(path)})
        message = str(info.value)
        assert name in message and words in message and "\n" not in message


def test_pretrained_checks_then_loads_with_the_recorded_parameter_count():
    import keras

    import zoo

    name = sorted(SHIPPED)[0]
    model = zoo.pretrained(name)
    assert isinstance(model, keras.Model) and model.count_params() == SHIPPED[name]["params"]
    with pytest.raises(SpatialmixError, match="unknown preset 'nope'"):
        zoo.pretrained("nope")


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.gets.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(root)))
    server.gets = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", server.gets
    server.shutdown()
    server.server_close()


def test_url_preset_downloads_once_is_cached_and_a_wrong_hash_is_refused(tmp_path, http_root):
    root, base, gets = http_root
    name, record = sorted(SHIPPED.items())[-1]
    shutil.copyfile(presets.shipped_path(record), root / "model.keras")
    url_record = {k: v for k, v in record.items() if k != "file"} | {"url": f"{base}/model.keras"}
    cache = tmp_path / "cache"
    model = presets.pretrained(name, record=url_record, cache_dir=str(cache))
    assert model.count_params() == record["params"]
    cached = cache / presets.CACHE_SUBDIR / f"{name}.keras"
    assert cached.exists() and gets == ["/model.keras"]
    presets.pretrained(name, record=url_record, cache_dir=str(cache))
    assert gets == ["/model.keras"], "a cached preset must not be downloaded again"

    wrong = {**url_record, "sha256": "0" * 64}
    with pytest.raises(SpatialmixError) as info:
        presets.pretrained("other.full_textures", record=wrong, cache_dir=str(cache))
    assert "other.full_textures" in str(info.value) and "sha256" in str(info.value)
    assert not (cache / presets.CACHE_SUBDIR / "other.full_textures.keras").exists(), "a refused file stays behind"
    with pytest.raises(SpatialmixError, match="could not download"):
        presets.pretrained("third.full_textures", record={**url_record, "url": f"{base}/nothing.keras"},
                           cache_dir=str(cache))


def _eval_arrays(tmp_path):
    """The embedded test splits the presets were measured on, saved as .npy for processes
    that import nothing of this project."""
    from recipes.core import data
    from recipes.core.unshuffle import permutation, scramble

    x, y = data.load_arrays("textures", "test")
    np.save(tmp_path / "textures_x.npy", x)
    np.save(tmp_path / "textures_y.npy", y)
    d, _ = data.load_arrays("digits", "test")
    d = np.asarray(d)
    np.save(tmp_path / "digits_target.npy", d)
    for seed in {r.get("permutation_seed", 0) for r in SHIPPED.values() if r["task"] == "unshuffle"}:
        np.save(tmp_path / f"digits_shuffled_{seed}.npy", scramble(d, permutation(8, 8, seed)))


LOAD_AND_SCORE = textwrap.dedent("""
    import json, sys
    import numpy as np, keras
    jobs = json.loads(sys.argv[1])
    out = {}
    for name, job in jobs.items():
        model = keras.models.load_model(job["path"], safe_mode=True)
        if job["task"] == "classification":
            x, y = np.load(job["x"]), np.load(job["y"])
            logits = keras.ops.convert_to_numpy(model.predict(x, batch_size=256, verbose=0))
            out[name] = float(np.mean(np.argmax(logits, axis=1) == y))
        else:
            x, target = np.load(job["x"]), np.load(job["y"])
            pred = keras.ops.convert_to_numpy(model.predict(x, batch_size=256, verbose=0))
            mse = float(np.mean((pred.astype(np.float64) - target) ** 2))
            out[name] = 10 * np.log10(1 / mse)
        out[name + ":params"] = model.count_params()
    project = sorted(m for m in sys.modules if m.split(".")[0] in ("zoo", "recipes", "tui"))
    print(json.dumps({"backend": keras.backend.backend(), "scores": out, "project_modules": project}))
""")


def test_every_shipped_preset_loads_on_every_backend_without_the_project(tmp_path):
    from recipes.core.choices import installed_backends

    _eval_arrays(tmp_path)
    jobs = {}
    for name, r in SHIPPED.items():
        if r["task"] == "classification":
            x, y = tmp_path / f"{r['dataset']}_x.npy", tmp_path / f"{r['dataset']}_y.npy"
        else:
            x, y = tmp_path / f"digits_shuffled_{r.get('permutation_seed', 0)}.npy", tmp_path / "digits_target.npy"
        jobs[name] = {"path": presets.shipped_path(r), "task": r["task"], "x": str(x), "y": str(y)}
    script = tmp_path / "score.py"
    script.write_text(LOAD_AND_SCORE)
    procs = {}
    for backend in installed_backends():  # one process per backend, in parallel; cwd outside the repo
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
        procs[backend] = subprocess.Popen([sys.executable, str(script), json.dumps(jobs)], cwd=str(tmp_path),
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for backend, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=400)
            assert proc.returncode == 0, f"{backend}: {stderr[-2000:]}"
            result = json.loads(stdout.strip().splitlines()[-1])
            assert result["backend"] == backend and result["project_modules"] == []
            for name, r in SHIPPED.items():
                got = result["scores"][name]
                assert result["scores"][name + ":params"] == r["params"]
                if r["task"] == "classification":
                    assert abs(100 * got - 100 * r["value"]) <= 0.5, f"{backend} {name}: {got} vs {r['value']}"
                else:
                    assert abs(got - r["value"]) <= 0.2, f"{backend} {name}: {got} dB vs {r['value']} dB"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def _fake_run(tmp_path):
    """A run folder with one finished cell, as the engine writes it."""
    import zoo
    from recipes.core import runfolder
    from recipes.core.train import export_plain

    run_dir = tmp_path / "runs" / "convmixer-mixing" / "smoke-digits-seed0"
    cell = "mode=chans,depth=1,seed=0"
    (run_dir / "cells" / cell).mkdir(parents=True)
    model = zoo.create_model("convmixer", width=16, depth=1, kernel_size=3, patch_size=1, num_classes=10,
                             input_shape=(8, 8, 1), mode="chans")
    export_plain(model, str(run_dir / "cells" / cell / "model.keras"))
    runfolder.atomic_write_json(str(run_dir / "run.json"), {"recipe": "convmixer-mixing", "scale": "smoke",
                                                         "dataset": "digits", "backend": "x", "seed": 0})
    runfolder.RunFolder(str(run_dir)).append_row( {"cell": cell, "mode": "chans", "depth": 1, "seed": 0,
                                                        "dataset": "digits", "test_accuracy": 0.875})
    return run_dir, cell, model.count_params()


def test_export_copies_a_cell_and_prints_its_record(tmp_path, capsys):
    from recipes.cli import main

    run_dir, cell, params = _fake_run(tmp_path)
    out_dir = tmp_path / "out"
    assert main(["zoo", "export", str(run_dir), "--cell", cell, "--out", str(out_dir)]) == 0
    printed = json.loads(capsys.readouterr().out)
    (name, record), = printed.items()
    assert name == "convmixer_16_1_k3_p1.chans_digits"
    path = out_dir / record["file"]
    assert record["sha256"] == presets.sha256_of(path) and record["bytes"] == os.path.getsize(path)
    assert record["params"] == params and record["value"] == 0.875 and record["mode"] == "chans"
    presets.validate_record(name, record)
    assert presets.pretrained(name, record={**record, "file": str(path)}).count_params() == params

    assert main(["zoo", "export", str(run_dir), "--cell", "nope", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cell 'nope'" in err
    assert not (tmp_path / "o2").exists(), "a failed export leaves no folder behind"


def test_zoo_verify_and_list(capsys):
    from recipes.cli import main

    assert main(["zoo", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"{len(presets.records())} presets verified" in out
    assert main(["zoo", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SHIPPED)


@pytest.mark.slow
def test_build_is_deterministic(tmp_path):
    """Two builds of one preset (1 epoch) on TensorFlow give the same weights."""
    code = textwrap.dedent(f"""
        import dataclasses, json
        from recipes.core import presets_build as pb
        name = "convmixer_32_2_k5_p2.chans_textures"
        spec = pb.SPECS_BY_NAME[name]
        pb.SPECS_BY_NAME[name] = dataclasses.replace(spec, budget={{**spec.budget, "epochs": 1}})
        notes = []
        for i in (1, 2):
            _, made = pb.build(runs_dir=r"{tmp_path}/runs%d" % i, names=[name], dest_dir=r"{tmp_path}")
            notes.append(made[0][2])
        print(json.dumps(notes))
    """)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=500)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["new", "same weights as before"]
    registry = json.loads((tmp_path / "presets.json").read_text())["presets"]
    assert list(registry) == ["convmixer_32_2_k5_p2.chans_textures"]
