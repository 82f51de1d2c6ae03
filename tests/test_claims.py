"""The claim blocks every check is built from, the declared thresholds, and frozen verdicts."""

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

from recipes.core import claims
from recipes.core.claims import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_verdict_is_one_enum_that_reads_as_its_text():
    assert claims.Verdict("holds") is HOLDS and HOLDS == "holds"
    assert f"{DOES_NOT_HOLD}" == "does not hold" and str(INCONCLUSIVE) == "inconclusive"
    with pytest.raises(ValueError):
        claims.Verdict("holds mostly")
    with pytest.raises(ValueError):
        claims.Finding("maybe", "a verdict that is not one of the three")


def test_within_close_beats_combine():
    assert claims.within((0.60, 0.01, 2), (0.59, 0.01, 2), 0.02) is HOLDS
    assert claims.within((0.60, 0.01, 2), (0.50, 0.01, 2), 0.02) is DOES_NOT_HOLD
    assert claims.within((0.60, 0.05, 2), (0.55, 0.05, 2), 0.02) is INCONCLUSIVE
    assert claims.within((0.50, 0.01, 2), (0.70, 0.01, 2), 0.02) is HOLDS          # one-sided: a gain is fine
    assert claims.within((0.072, 0.001, 2), (0.071, 0.001, 2), 0.02, chance=1 / 14) is INCONCLUSIVE
    assert claims.close((0.50, 0.01, 2), (0.70, 0.01, 2), 0.02) is DOES_NOT_HOLD   # two-sided
    assert claims.close((0.70, 0.01, 2), (0.69, 0.01, 2), 0.02) is HOLDS
    assert claims.beats((0.60, 0.01, 2), (0.50, 0.01, 2)) is HOLDS
    assert claims.beats((0.50, 0.01, 2), (0.60, 0.01, 2)) is DOES_NOT_HOLD
    assert claims.beats((0.52, 0.05, 2), (0.50, 0.05, 2)) is INCONCLUSIVE
    assert claims.beats((0.60, 0.01, 2), (0.57, 0.01, 2), 0.05) is DOES_NOT_HOLD    # separated, short of the margin
    assert claims.beats((0.60, 0.001, 2), (0.599, 0.001, 2), 0.05) is DOES_NOT_HOLD  # far short, within spread
    assert claims.beats((0.60, 0.03, 2), (0.56, 0.03, 2), 0.05) is INCONCLUSIVE      # short by less than spread
    assert claims.combine([HOLDS, INCONCLUSIVE]) is INCONCLUSIVE
    assert claims.combine(["holds", "does not hold", "inconclusive"]) is DOES_NOT_HOLD
    assert claims.combine([]) is INCONCLUSIVE
    assert claims.combine([HOLDS, HOLDS]) is HOLDS
    assert claims.combine([HOLDS], expected=2) is INCONCLUSIVE
    assert claims.combine([DOES_NOT_HOLD], expected=2) is DOES_NOT_HOLD


def test_thresholds_resolve_per_scale_and_print():
    t = claims.Thresholds(tol=claims.Threshold(0.02, "loses at most this", by_scale={"paper": 0.01}),
                          close=claims.Threshold(1.0, "dB apart at most", unit="dB"))
    assert t.at("cpu").tol == 0.02 and t.at("paper").tol == 0.01 and t.at().close == 1.0
    assert t.values("paper") == {"tol": 0.01, "close": 1.0}
    lines = t.lines()
    assert lines[0] == "tol = 2 pts; paper scale: 1 pts: loses at most this" and lines[1].startswith("close = 1 dB")


def _mixing_rows(full, chans, space, spread=0.01, depths=(2, 4)):
    """convmixer-mixing's cpu grid (mode × depth × seeds 0, 1) with these means and spread."""
    rows = []
    for mode, mean in (("full", full), ("chans", chans), ("space", space)):
        for depth in depths:
            for seed, sign in ((0, -1), (1, 1)):
                rows.append({"cell": f"mode={mode},depth={depth},seed={seed}", "mode": mode, "depth": str(depth),
                             "seed": str(seed), "test_accuracy": str(mean + sign * spread / 2 ** 0.5)})
    return rows


def test_differences_name_the_threshold_the_code_and_the_rows():
    from recipes.core.registry import get_recipe

    recipe = get_recipe("convmixer-mixing")
    rows = _mixing_rows(0.60, 0.585, 0.45)
    finding = claims.judge(recipe, "cpu", rows)
    assert finding.verdict is HOLDS
    frozen = claims.verdict_record(recipe, "cpu", rows, finding)
    assert frozen["thresholds"] == {"close": 0.03, "far": 0.05} and frozen["cells"] == 12
    assert frozen["arm_axes"] == ["mode", "depth"] and frozen["arms"]["full/2"]["n"] == 2
    assert abs(frozen["arms"]["chans/4"]["mean"] - 0.585) < 1e-9
    assert claims.differences(frozen, recipe, "cpu", rows) == []
    stricter = dataclasses.replace(recipe, thresholds=claims.Thresholds(
        close=claims.Threshold(0.01, "stricter"), far=recipe.thresholds.items["far"]))
    assert claims.judge(stricter, "cpu", rows).verdict is DOES_NOT_HOLD
    assert claims.differences(frozen, stricter, "cpu", rows) == ["threshold close 0.03 → 0.01"]
    assert claims.differences(frozen, recipe, "cpu", rows[:-1]) == ["11 cells now, 12 when frozen"]


def test_report_shows_the_frozen_verdict_beside_the_new_one_after_a_threshold_change(tmp_path):
    """A finished run keeps its frozen verdict. In a scratch copy of the code whose threshold
    was changed, `spatialmix report` shows the frozen verdict, today's, and why they differ."""
    from recipes.core import runfolder
    from recipes.core.engine import write_outputs
    from recipes.core.registry import get_recipe

    recipe = get_recipe("convmixer-mixing")
    run_dir = runfolder.run_dir_for(str(tmp_path / "runs"), recipe.id, "cpu", "textures", 0)
    folder = runfolder.RunFolder(run_dir).create()
    folder.record_invocation({"recipe": recipe.id, "scale": "cpu", "dataset": "textures", "seed": 0,
                              "backend": "torch"}, runfolder.invocation(["test"]))
    for row in _mixing_rows(0.60, 0.585, 0.45, spread=0.002):
        folder.append_row(row)
    log = folder.event_log()
    log.emit("run_start", recipe=recipe.id, scale="cpu", cells_total=12, cells_done=0)
    assert write_outputs(recipe, run_dir, freeze=True).verdict is HOLDS
    log.emit("run_end", status="finished", cells_done=12, cells_total=12)

    scratch = tmp_path / "scratch"
    for package in ("recipes", "zoo", "tui"):
        shutil.copytree(os.path.join(ROOT, package), scratch / package,
                        ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))
    common = scratch / "recipes" / "paper_a" / "_common.py"
    text = common.read_text()
    assert 'close=claims.Threshold(0.03, "chans ≈ full' in text
    common.write_text(text.replace('close=claims.Threshold(0.03, "chans ≈ full', 'close=claims.Threshold(0.01, "chans ≈ full'))

    def report(cwd, pythonpath):
        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
        proc = subprocess.run([sys.executable, "-m", "recipes.cli", "report", "--runs-dir", str(tmp_path / "runs")],
                              capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
        assert proc.returncode == 0, proc.stderr
        return next(line for line in proc.stdout.splitlines() if line.startswith("| `convmixer-mixing`"))

    same = report(ROOT, ROOT)
    assert "| holds |" in same and "today's check" not in same
    changed = report(scratch, scratch)
    assert "holds (frozen); today's check: does not hold (threshold close 0.03 → 0.01" in changed
