"""Bad input, as a new user types it: every row runs the installed console script (`spatialmix`,
`spatialmix-tui`) as a subprocess and wants one line that says what is wrong, the exit code,
no traceback, and nothing written. A new flag or subcommand adds its rows here.

The working directory of each row holds:
    a-file         a regular file (where a directory is wanted)
    empty-tfds/    an empty directory (a TFDS data dir with nothing prepared)
    a-run/         a run folder with one finished cell (written through recipes.core.runfolder)
"""

import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys

import pytest

from recipes.core import runfolder

BIN = os.path.dirname(sys.executable)
CELL = "mode=full,depth=1,seed=0"

# (argv, exit code, a word the one line must contain). {busy_port}: a port something listens on.
SPATIALMIX = [
    (["--version"], 0, importlib.metadata.version("spatialmix")),
    (["nope"], 2, "'nope'"),
    (["list", "extra"], 2, "extra"),
    (["show", "nope"], 2, "'nope'"),
    (["run"], 2, "recipe"),
    (["run", "no-such-recipe"], 2, "'no-such-recipe'"),
    (["run", "convmixer-mixing", "--scale", "huge"], 2, "'huge'"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--dataset", "imagenet2013"], 2, "'imagenet2013'"),
    (["run", "convmixer-mixing", "--backend", "theano"], 2, "'theano'"),
    (["run", "convmixer-mixing", "--seed", "-3"], 2, "--seed"),
    (["run", "convmixer-mixing", "--seed", "abc"], 2, "'abc'"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--runs-dir", "a-file"], 2, "--runs-dir"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--runs-dir", "a-file/runs"], 2, "cannot be created"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--data-dir", "no-such-dir"], 2, "--data-dir"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--dry-run-batch", "8"], 2, "--dry-run"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--dry-run", "--dry-run-batch", "0"], 2, "'0'"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--dry-run", "--dry-run-batch", "big"], 2, "'big'"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--precision", "fp8"], 2, "'fp8'"),
    (["run", "convmixer-mixing", "--scale", "paper", "--data-dir", "empty-tfds"], 2, "'cifar10' is not prepared"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--backend", "torch", "--distribute"], 2,
     "--distribute is not available on backend 'torch'"),
    (["run", "convmixer-mixing", "--scale", "smoke", "--backend", "tensorflow", "--distribute"], 2,
     "--distribute needs two or more devices; tensorflow sees one"),      # a CPU-only machine (see ENV)
    (["run", "convmixer-mixing", "--scale", "smoke", "--backend", "jax", "--distribute"], 2,
     "--distribute needs two or more devices; jax sees one"),
    (["results", "nope"], 2, "'nope'"),
    (["results", "--runs-dir", "a-file"], 2, "not a directory"),
    (["results", "--runs-dir", "does/not/exist"], 2, "does not exist"),
    (["report", "--runs-dir", "does/not/exist"], 2, "does not exist"),
    (["report", "--runs-dir", "a-file"], 2, "not a directory"),
    (["tune", "convmixer"], 2, "--mode"),
    (["tune", "nope", "--mode", "chans"], 2, "unknown model 'nope'"),
    (["tune", "convmixer", "--mode", "half"], 2, "unknown mode 'half'"),
    (["tune", "convmixer", "--mode", "chans", "--max-trials", "0"], 2, "--max-trials"),
    (["tune", "convmixer", "--mode", "chans", "--max-params", "-5"], 2, "--max-params"),
    (["tune", "convmixer", "--mode", "chans", "--epochs", "x"], 2, "--epochs"),
    (["tune", "convmixer", "--mode", "chans", "--tuner", "grid"], 2, "unknown tuner 'grid'"),
    (["tune", "convmixer", "--mode", "chans", "--scale", "paper"], 2, "not supported by tune yet"),
    (["tune", "convmixer", "--mode", "chans", "--dataset", "patches"], 2, "tune searches classifiers"),
    (["tune", "convmixer", "--mode", "chans", "--backend", "theano"], 2, "'theano'"),
    (["tune", "convmixer", "--mode", "chans", "--runs-dir", "a-file"], 2, "--runs-dir"),
    (["zoo"], 2, "needs an action"),
    (["zoo", "nope"], 2, "'nope'"),
    (["zoo", "export", "a-run"], 2, "--cell"),
    (["zoo", "export", "no-such-run", "--cell", CELL], 2, "does not exist"),
    (["zoo", "export", "a-run", "--cell", "mode=nope", "--out", "exported/presets"], 2, "'mode=nope'"),
    (["zoo", "export", "a-run", "--cell", CELL, "--out", "a-file"], 2, "--out"),
    (["zoo", "build", "--only", "nope"], 2, "unknown preset 'nope'"),
    (["zoo", "build", "--backend", "theano"], 2, "'theano'"),
    (["bench", "--backends", "theano"], 2, "theano"),
    (["bench", "--backend", "theano"], 2, "theano"),
    (["bench", "--steps", "0"], 2, "--steps"),
    (["bench", "--size", "huge"], 2, "'huge'"),
    (["bench", "--worker", "keras"], 2, "--worker"),       # the workers' own options are not the bench's
]
SPATIALMIX_TUI = [
    (["--version"], 0, importlib.metadata.version("spatialmix")),
    (["--bogus"], 2, "--bogus"),
    (["--runs-dir", "a-file"], 2, "not a directory"),
    (["--runs-dir", "a-file/runs"], 2, "cannot be created"),
    (["--data-dir", "no-such-dir"], 2, "--data-dir"),
    (["--serve", "99999"], 2, "65535"),
    (["--serve", "0"], 2, "65535"),
    (["--serve", "abc"], 2, "'abc'"),
    (["--serve", "{busy_port}"], 2, "cannot serve"),
]
# every row on a CPU-only machine, its CPU one device (the --distribute rows want one device)
ENV = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "CUDA_VISIBLE_DEVICES": "",
       "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
ROWS = [("spatialmix", *row) for row in SPATIALMIX] + [("spatialmix-tui", *row) for row in SPATIALMIX_TUI]


def tree(path):
    return sorted(os.path.relpath(os.path.join(d, name), path)
                  for d, subdirs, files in os.walk(path) for name in subdirs + files)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    made = tmp_path_factory.mktemp("fixtures")
    (made / "a-file").write_text("not a directory\n")
    (made / "empty-tfds").mkdir()
    run = runfolder.RunFolder(str(made / "a-run")).create()
    run.record_invocation({"recipe": "convmixer-mixing", "scale": "smoke", "dataset": "digits", "seed": 0,
                           "backend": "tensorflow"}, runfolder.invocation(["spatialmix", "run", "convmixer-mixing"]))
    run.append_row({"cell": CELL, "mode": "full", "depth": 1, "seed": 0, "test_accuracy": 0.5})
    return made


@pytest.fixture
def workdir(fixtures, tmp_path):
    shutil.copytree(fixtures, tmp_path / "cwd")
    return tmp_path / "cwd"


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("script,argv,code,word", ROWS, ids=[f"{s} {' '.join(a)}" for s, a, _, _ in ROWS])
def test_bad_input_is_one_line(workdir, busy_port, script, argv, code, word):
    argv = [a.format(busy_port=busy_port) for a in argv]
    before = tree(workdir)
    proc = subprocess.run([os.path.join(BIN, script), *argv], capture_output=True, text=True, timeout=300,
                          cwd=workdir, stdin=subprocess.DEVNULL, env=ENV)
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    said = proc.stdout if code == 0 else proc.stderr
    lines = [line for line in said.splitlines() if line.strip()]
    assert len(lines) == 1, said[-3000:]
    assert word in lines[0], (word, lines[0])
    assert "Traceback" not in proc.stdout + proc.stderr
    if code:
        assert lines[0].startswith(f"{script}: error: ") and proc.stdout == ""
    else:  # --version: what a bug report quotes, from the installed package's metadata
        assert lines[0] == f"{script} {word}" and proc.stderr == ""
    assert tree(workdir) == before, "the command left files behind"

