"""`spatialmix reproduce` and `spatialmix report --docs`.

- End to end at smoke scale on two recipes: interrupted (SIGINT) during the second one, run
  again it skips the finished recipe, resumes the interrupted one, and writes the table and
  the results pages with their figures; a third time it finds everything done.
- A classification baseline below 3× chance is marked "untrained" in the table and on the
  pages (run folders written here through the run-folder module and the engine's outputs).
- Which cells are baselines, for every registered recipe.
- Bad input: one line, exit 2, nothing written.
"""

import os
import signal
import subprocess
import sys
import time

from recipes.core import reproduction, runfolder
from recipes.core.engine import cell_id, expand_grid, write_outputs
from recipes.core.registry import get_recipe, list_recipes
from recipes.paper_b._common import parse_arm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "recipes.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


def table_rows(text):
    return {line.split("|")[1].strip(): dict(zip(reproduction.HEADER, [c.strip() for c in line.split("|")[1:-1]]))
            for line in text.splitlines() if line.startswith("| `")}


def test_reproduce_runs_resumes_after_an_interrupt_and_writes_the_pages(tmp_path):
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    argv = [sys.executable, "-m", "recipes.cli", "reproduce", "--scale", "smoke", "--only",
            "spectral-envelope,static-filters", "--runs-dir", str(runs), "--docs", str(docs), "--quiet"]
    results = runs / "static-filters" / "smoke-digits-seed0" / "results.csv"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=ENV)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 2:  # the first cell has its row
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGINT)  # to reproduce only: it passes it on to the run
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-3000:]
    assert "[1/2] spectral-envelope" in out and "[2/2] static-filters" in out and "ETA" in out
    done = len(runfolder.RunFolder(results.parent).rows())
    assert 1 <= done < 5, out[-3000:]
    assert not (docs / "paper-a.md").exists()   # nothing written before the recipes are done

    again = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT, env=ENV)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[1/2] spectral-envelope: finished (4 cells), skipped" in again.stdout
    assert f"[2/2] static-filters (smoke, digits, resuming at {done}/5 cells)" in again.stdout
    folder = runfolder.RunFolder(results.parent)
    assert sorted(r["cell"] for r in folder.rows()) == sorted(
        cell_id(c, s) for c, s in expand_grid(get_recipe("static-filters").scales["smoke"]))
    assert [e["event"] for e in folder.events().events].count("run_start") == 2
    assert folder.status() == "finished"

    rows = table_rows((docs / "reproduction.md").read_text())
    assert rows["`static-filters`"]["cells"] == "5/5" and rows["`static-filters`"]["wall"].endswith(("s", "min"))
    assert rows["`spectral-envelope`"]["cells"] == "4/4"
    assert rows["`depth-strip`"]["verdict"] == reproduction.NOT_RUN
    page_a = (docs / "paper-a.md").read_text()
    assert page_a.startswith("# Paper A") and "## `static-filters`" in page_a and "## `spectral-envelope`" in page_a
    assert "### smoke · digits · " in page_a and "**Measured here:**" in page_a
    assert "![static-filters, smoke · digits" in page_a
    assert (docs / "figures" / "static-filters-smoke-digits.png").stat().st_size > 1000
    assert (docs / "figures" / "spectral-envelope-smoke-digits.png").exists()
    page_b = (docs / "paper-b.md").read_text()
    assert page_b.startswith("# Paper B") and page_b.count("not run.") == 9
    assert "| `static-filters` |" in again.stdout   # the table is printed too

    third = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert third.returncode == 0 and "[2/2] static-filters: finished (5 cells), skipped" in third.stdout


# ---------------------------------------------------------------------------- untrained baselines


def write_run(runs, rid, accuracy_of, dataset="textures", scale="cpu"):
    """A finished run folder of `rid` with one row per grid cell, `accuracy_of(config)` its
    test accuracy; figure, verdict and report by the engine's own write_outputs."""
    recipe = get_recipe(rid)
    folder = runfolder.RunFolder(runfolder.run_dir_for(str(runs), rid, scale, dataset, 0)).create()
    folder.record_invocation({"recipe": rid, "scale": scale, "dataset": dataset, "seed": 0, "backend": "torch"},
                             runfolder.invocation(["test"]))
    log = folder.event_log()
    grid = expand_grid(recipe.scales[scale])
    log.emit("run_start", recipe=rid, scale=scale, cells_total=len(grid), cells_done=0)
    for config, seed in grid:
        arm = parse_arm(config["arm"]) if "arm" in config else {}   # the columns paper B's run_arm adds
        folder.append_row({"cell": cell_id(config, seed), **config, **{k: arm[k] for k in ("net", "method", "k") if arm},
                           "seed": seed, "dataset": dataset, "scale": scale, "backend": "torch",
                           "test_accuracy": accuracy_of(config) + 0.002 * seed})
    log.emit("run_end", status="finished", cells_done=len(grid), cells_total=len(grid), wall_s=321.0)
    write_outputs(recipe, folder.path, freeze=True)
    return folder


def test_a_baseline_below_three_times_chance_is_untrained_not_a_verdict(tmp_path):
    runs = tmp_path / "runs"
    # 14 classes: 3x chance is 21.4 %; the baseline (layer 0) at 10 %
    write_run(runs, "single-layer-shuffle", lambda c: 0.10 if c["layer"] == 0 else 0.09)
    row = table_rows(reproduction.reproduction_table(str(runs)))["`single-layer-shuffle`"]
    assert row["verdict"].startswith("**untrained: baseline below 3× chance (21.4 %): layer=0 10.1 %**")
    assert "(the check says: " in row["verdict"] and row["wall"] == "321 s"
    # trained: the verdict is the check's
    write_run(runs, "spatial-ablation", lambda c: 0.40 if ":none:" in c["arm"] else 0.39)
    row = table_rows(reproduction.reproduction_table(str(runs)))["`spatial-ablation`"]
    assert "untrained" not in row["verdict"] and row["verdict"] in ("holds", "does not hold", "inconclusive")

    written = reproduction.write_docs(str(runs), str(tmp_path / "docs"))
    page = (tmp_path / "docs" / "paper-b.md").read_text()
    section = page.split("## `single-layer-shuffle`")[1].split("\n## ")[0]
    assert "**Untrained: baseline below 3× chance (21.4 %): layer=0 10.1 %.**" in section
    assert "wall 321 s" in section and "![single-layer-shuffle, cpu · textures · torch](figures/" in section
    assert "untrained" not in page.split("## `spatial-ablation`")[1].split("\n## ")[0].lower()
    assert sorted(os.path.basename(p) for p in written if p.endswith(".md")) == ["paper-a.md", "paper-b.md",
                                                                                "reproduction.md"]


def test_every_recipes_grid_names_its_baselines():
    """Each recipe's cpu grid has baseline cells (registry-driven: a new recipe is checked by
    existing), and they are the unmodified nets."""
    for rid in list_recipes():
        recipe = get_recipe(rid)
        configs = [c for c, s in expand_grid(recipe.scales["cpu"]) if s == recipe.scales["cpu"].seeds[0]]
        assert any(reproduction.is_baseline(recipe, c) for c in configs), rid

    def baselines(rid):
        recipe = get_recipe(rid)
        return [c for c, s in expand_grid(recipe.scales["cpu"])
                if s == recipe.scales["cpu"].seeds[0] and reproduction.is_baseline(recipe, c)]

    assert baselines("spatial-ablation") == [{"arm": "vgg16:none:0"}, {"arm": "resnet50:none:0"}]
    assert baselines("augmentation-ablation") == [{"arm": "resnet50:none:0", "augment": 1},
                                                  {"arm": "resnet50:none:0", "augment": 0}]
    assert [c["filters"] for c in baselines("static-filters")] == ["full", "random"]
    assert {c["mode"] for c in baselines("convmixer-mixing")} == {"full"}
    assert baselines("adversarial-resnets") == [{"mode": "full", "training": "standard", "depth": 1}]
    assert baselines("receptive-field") == [{"image_size": 32, "k": 0}, {"image_size": 64, "k": 0}]


# ---------------------------------------------------------------------------- bad input


def test_reproduce_and_report_bad_input_is_one_line_and_writes_nothing(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    cases = [
        (["reproduce", "--only", "depth-strip,nope", "--runs-dir", str(runs), "--docs", str(docs)], ["nope", "--only"]),
        (["reproduce", "--scale", "huge", "--runs-dir", str(runs), "--docs", str(docs)], ["huge", "cpu"]),
        (["reproduce", "--runs-dir", str(afile), "--docs", str(docs)], ["runs dir", "not a directory"]),
        (["reproduce", "--runs-dir", str(runs), "--docs", str(afile / "docs")], ["docs dir", "--docs"]),
        (["report", "--runs-dir", str(tmp_path), "--docs", str(afile / "docs")], ["docs dir", "--docs"]),
    ]
    for args, words in cases:
        proc = cli(*args, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 and all(w in proc.stderr for w in words), (args, proc.stderr)
        assert proc.stdout == "" and not runs.exists() and not docs.exists(), args
