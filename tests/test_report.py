"""`spatialmix report`: the reproduction table from run folders. A finished run, a half-finished
(interrupted) run and a recipe never run each show as what they are."""

import os
import shutil
import subprocess
import sys

import pytest

from recipes.core import runfolder
from recipes.core.engine import run_recipe
from recipes.core.registry import get_recipe, list_recipes
from recipes.core.reproduction import HEADER, NOT_RUN, reproduction_table

SPATIALMIX = os.path.join(os.path.dirname(sys.executable), "spatialmix")


class StopAfterFirstCell:
    """A progress callback that presses Ctrl-C once the first cell has its results row."""

    def __call__(self, event):
        if event["event"] == "cell_end":
            raise KeyboardInterrupt


def table_rows(text):
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in text.splitlines() if line.startswith("| `")}


def test_report_of_a_real_smoke_run(smoke_run, tmp_path):
    """`spatialmix report` on the folder a real `spatialmix run --scale smoke` wrote: its recipe's row
    has the run, every cell, the seed, our numbers and the verdict frozen when the run ended; every
    other recipe says "not run"."""
    runs = tmp_path / "runs"
    shutil.copytree(smoke_run.runs_dir, runs)
    frozen = runfolder.RunFolder(str(runs / "convmixer-mixing" / "smoke-digits-seed0")).frozen_verdict()
    assert frozen is not None, "a finished run freezes its verdict"
    proc = subprocess.run([SPATIALMIX, "report", "--runs-dir", str(runs)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr
    assert "| " + " | ".join(HEADER) + " |" in proc.stdout
    rows = table_rows(proc.stdout)
    assert set(rows) == {f"`{rid}`" for rid in list_recipes()}
    done = dict(zip(HEADER, rows["`convmixer-mixing`"]))
    recipe = get_recipe("convmixer-mixing")
    assert done["paper"] == recipe.paper and done["run (scale · data · backend)"].startswith("smoke · digits · ")
    assert done["cells"] == "3/3" and done["seeds"] == "0"
    # two smoke epochs leave the baseline near chance: the table says so instead of reading the verdict
    assert done["verdict"] == frozen["verdict"] or (
        done["verdict"].startswith("**untrained: baseline below 3× chance")
        and done["verdict"].endswith(f"(the check says: {frozen['verdict']})"))
    assert "%" in done["ours"] and "full" in done["ours"] and "chans" in done["ours"]
    others = [dict(zip(HEADER, r)) for rid, r in rows.items() if rid != "`convmixer-mixing`"]
    assert others and all(row["cells"] == row["verdict"] == NOT_RUN for row in others)


@pytest.mark.slow
def test_report_shows_finished_half_finished_and_not_run(tmp_path):
    runs = str(tmp_path / "runs")
    finished = get_recipe("resnet-mixing")
    _, verdict = run_recipe(finished, "smoke", runs_dir=runs, argv=["test"])
    half = get_recipe("wide-resnets")
    with pytest.raises(KeyboardInterrupt):
        run_recipe(half, "smoke", runs_dir=runs, argv=["test"], progress=StopAfterFirstCell())

    proc = subprocess.run([SPATIALMIX, "report", "--runs-dir", runs], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert set(rows) == {f"`{rid}`" for rid in list_recipes()}      # one row per registered recipe
    assert "| " + " | ".join(HEADER) + " |" in proc.stdout

    done = dict(zip(HEADER, rows["`resnet-mixing`"]))
    assert done["paper"] == finished.paper and done["run (scale · data · backend)"].startswith("smoke · digits · ")
    assert done["cells"] == "3/3" and done["seeds"] == "0" and done["verdict"] == verdict.verdict
    assert "full/1" in done["ours"] and "%" in done["ours"]

    partial = dict(zip(HEADER, rows["`wide-resnets`"]))
    assert partial["cells"] == "1/4 (interrupted)"
    assert partial["verdict"].endswith("(so far, 1/4 cells)")
    assert partial["ours"] != NOT_RUN

    never = dict(zip(HEADER, rows["`compute-cost`"]))
    assert never["cells"] == never["ours"] == never["verdict"] == NOT_RUN   # never a blank
    assert all(cell for cell in never.values())


def test_report_of_an_empty_runs_dir_and_a_killed_run(tmp_path):
    """No run folder: every row says "not run". A run whose log stops without run_end (kill -9, or still
    running) says so, and a folder with no results yet is not taken for a result."""
    text = reproduction_table(str(tmp_path))
    rows = table_rows(text)
    assert rows and all(dict(zip(HEADER, r))["verdict"] == NOT_RUN for r in rows.values())

    run_dir = tmp_path / "static-filters" / "cpu-textures-seed0"
    run_dir.mkdir(parents=True)
    runfolder.atomic_write_json(str(run_dir / "run.json"), {"recipe": "static-filters", "scale": "cpu",
                                                         "dataset": "textures", "seed": 0, "backend": "torch"})
    log = runfolder.EventLog(str(run_dir / "events.jsonl"))
    log.emit("run_start", recipe="static-filters", scale="cpu", cells_total=10, cells_done=0)
    row = dict(zip(HEADER, table_rows(reproduction_table(str(tmp_path)))["`static-filters`"]))
    assert row["cells"] == "0/10 (running or killed)" and row["verdict"].startswith(NOT_RUN)
    assert row["run (scale · data · backend)"] == "cpu · textures · torch"
