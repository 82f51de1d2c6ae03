"""spatialmix-tui driven like a person would: App.run_test() + Pilot at 80×24 and 160×50.

The runs are real `spatialmix run` subprocesses (smoke scale, ~15-60 s each on 2 shared
cores); only the NVML library is a stand-in (no GPU here). The snapshot tests use run
folders that the test writes itself, so the pictures do not depend on clocks or load.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request

import psutil
import pytest

from recipes.core import registry, runfolder
from tui import app as tui_app
from tui import device as device_mod
from tui import runs as runs_mod
from tui.screens.help import HelpScreen
from tui.screenshots import settled
from tui.widgets import DevicePanel

RECIPE = "convmixer-mixing"
SMOKE_CELLS = 3
RUN_TIMEOUT = 240          # seconds for a real smoke run under load (they take 15-60 s)
SMALL, LARGE = (80, 24), (160, 50)


class StillSampler:
    """A device sampler with fixed numbers (the snapshot must not show this machine's load)."""

    def sample(self):
        return device_mod.DeviceSample(gpus=[], note="no GPU (test)", cpu_percent=12.0, cpu_count=2,
                                       ram_used=3 * 2**30, ram_total=24 * 2**30)


def make_app(runs_dir, tmp_path, **kw):
    kw.setdefault("sampler", StillSampler())
    return tui_app.SpatialmixApp(runs_dir=str(runs_dir), interval=0.5, export_dir=str(tmp_path),
                                 screenshot_dir=str(tmp_path), **kw)


def run(coro):
    return asyncio.run(coro)


def kill_launches(app):
    for launch in app.store.launches:
        if launch.process.poll() is None:
            launch.process.kill()
            launch.process.wait()


async def wait_for(pilot, condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; runs: "
                         f"{[(v.label, v.state, v.cells_text, v.error) for v in pilot.app.views]}")


def cells(table, key):
    return [str(c) for c in table.get_row(key)]


def view_of(app, run_dir):
    return app.view(os.path.abspath(run_dir))


def smoke_dir(runs_dir):
    return os.path.abspath(os.path.join(runs_dir, RECIPE, "smoke-digits-seed0"))


def spatialmix(*args):
    return [*runs_mod.spatialmix_command(), *args]


def stop(process, grace=0):
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


# ---------------------------------------------------------------- catalogue

@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_catalogue_navigation(tmp_path, size):
    async def body():
        app = make_app(tmp_path / "runs", tmp_path)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#catalogue")
            ids = [row.key.value for row in table.ordered_rows]
            assert ids == registry.list_recipes()          # the catalogue is the registry's
            detail = app.screen.query_one("#detail-text")
            await pilot.press("end")
            await pilot.press("home")
            recipe = registry.get_recipe(ids[0])
            text = str(detail.render())
            assert recipe.claim[:40] in text.replace("\n", " ")
            assert "[smoke]" in text and "[cpu]" in text and "budget" in text and "grid" in text
            # scale, by keys: tab to the scale list, open it, one up (cpu -> smoke), enter
            await pilot.press("tab", "enter", "up", "enter")
            await pilot.pause()
            assert app.screen.query_one("#scale").value == "smoke"
            assert app.screen.query_one("#dataset").value == recipe.scales["smoke"].dataset
            # screens by number; the help by ?
            await pilot.press("2")
            assert app.current_mode == "runs"
            await pilot.press("3")
            assert app.current_mode == "results"
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape", "1")
            assert app.current_mode == "recipes"

    run(body())


def test_command_palette_finds_recipes_and_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "smoke-digits-seed0", accuracies=(0.5, 0.6, 0.4))

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=LARGE) as pilot:
            await wait_for(pilot, lambda: app.views, 20, "the fixture run")
            await pilot.press("ctrl+p")
            await pilot.press(*"smoke-digits")
            await pilot.pause(1)
            await pilot.press("enter")
            await pilot.pause(0.5)
            assert app.current_mode in ("runs", "results")
            await pilot.press("1", "ctrl+p")
            await pilot.press(*RECIPE)
            await pilot.pause(1)
            await pilot.press("enter")
            await pilot.pause(0.5)
            assert app.current_mode == "recipes"
            assert app.screen.current_recipe().id == RECIPE

    run(body())


# ---------------------------------------------------------------- real runs

def test_start_smoke_run_by_keys_and_browse_results(tmp_path):
    """Keys alone: pick smoke, start, watch it finish 3/3, open results, sort, filter, export."""
    runs_dir = tmp_path / "runs"

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.pause()
            app.screen.show_recipe(RECIPE)
            await pilot.press("tab", "enter", "up", "enter")      # scale: smoke
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause()
            assert app.current_mode == "runs"
            run_dir = smoke_dir(runs_dir)
            await wait_for(pilot, lambda: (view_of(app, run_dir) or runs_mod.RunView("", "", "", "")).state
                           == "finished", RUN_TIMEOUT, "the smoke run to finish")
            table = app.screen.query_one("#runs")
            row = cells(table, run_dir)
            assert "finished" in row and f"{SMOKE_CELLS}/{SMOKE_CELLS}" in row
            assert view_of(app, run_dir).verdict in ("holds", "does not hold", "inconclusive")
            table.move_cursor(row=table.get_row_index(run_dir))
            await pilot.press("enter")                            # its results
            await pilot.pause(1)
            assert app.current_mode == "results"
            screen = app.screen
            on_disk = runfolder.read_results(os.path.join(run_dir, "results.csv"))
            results = screen.query_one("#results-table")
            assert results.row_count == len(on_disk) == SMOKE_CELLS
            shown = {cells(results, row.key)[0] for row in results.ordered_rows}
            assert shown == {r["cell"] for r in on_disk}
            report = open(os.path.join(run_dir, "report.md")).read()
            verdict = runs_mod.frozen_verdict(run_dir)
            assert verdict in str(screen.query_one("#verdict").render())
            # sort by clicking the "mode" header; again reverses
            cell_width = results.columns["cell"].get_render_width(results)
            await pilot.click("#results-table", offset=(cell_width + 1, 0))
            await pilot.pause()
            modes = [cells(results, row.key)[1] for row in results.ordered_rows]
            assert modes == sorted(r["mode"] for r in on_disk)
            await pilot.click("#results-table", offset=(cell_width + 1, 0))
            await pilot.pause()
            assert [cells(results, row.key)[1] for row in results.ordered_rows] == sorted(modes, reverse=True)
            # / filters by a column's value
            await pilot.press("slash", *"mode=chans", "enter")
            # one pause was not always enough on a loaded host (CI saw all 3 rows still shown)
            await wait_for(pilot, lambda: results.row_count == 1, 10, "the filter to apply")
            assert cells(results, results.ordered_rows[0].key)[1] == "chans"
            await pilot.press("e")                               # export what is shown
            await pilot.pause()
            exported = runfolder.read_results(app.last_export)
            assert [r["cell"] for r in exported] == [r["cell"] for r in on_disk if r["mode"] == "chans"]
            await pilot.press("escape")
            await pilot.pause()
            assert results.row_count == SMOKE_CELLS
            # the report, in the Markdown viewer
            await pilot.press("m")
            await pilot.pause()
            md = screen.query_one("#report-md").document
            assert "Measured here" in md.source and md.source == report
            await pilot.press("f")
            await pilot.pause()
            assert "figure.png" in str(screen.query_one("#figure-note").render())

    run(body())


def test_attaches_to_a_run_started_elsewhere(tmp_path):
    """A `spatialmix run` from another terminal: the TUI finds it, follows its curves to the end."""
    runs_dir = tmp_path / "runs"
    process = subprocess.Popen(spatialmix("run", RECIPE, "--scale", "smoke", "--runs-dir", str(runs_dir), "--quiet"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    states = set()

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=LARGE) as pilot:
            await pilot.press("2")
            run_dir = smoke_dir(runs_dir)

            def done():
                v = view_of(app, run_dir)
                if v is not None:
                    states.add(v.state)
                return v is not None and v.state == "finished"

            await wait_for(pilot, done, RUN_TIMEOUT, "the outside run to finish")
            v = view_of(app, run_dir)
            assert v.cells_text == f"{SMOKE_CELLS}/{SMOKE_CELLS}" and len(v.curves) == SMOKE_CELLS
            screen = app.screen
            screen.query_one("#runs").move_cursor(row=screen.query_one("#runs").get_row_index(run_dir))
            await pilot.pause()
            loss = screen.query_one("#loss-plot")
            assert len(loss._datasets) == SMOKE_CELLS        # one curve per cell
            info = str(screen.query_one("#run-info").render())
            assert "samples/s" in info and "full d1 s0" in info

    try:
        run(body())
    finally:
        stop(process, grace=60)      # it has written run_end; let it print its verdict and exit
    assert process.returncode == 0
    assert "running" in states, f"the TUI never showed the outside run running; it saw {states}"


def test_cancel_then_resume_a_real_smoke_run(tmp_path):
    """Keys alone, on a real smoke run: s starts it, c cancels it (SIGINT -> interrupted), r resumes
    it to the end. The resumed run trains no finished cell again, picks the cell it was in up from
    its last epoch checkpoint, and ends with one row per cell."""
    runs_dir = tmp_path / "runs"
    run_dir = smoke_dir(runs_dir)
    events_path = os.path.join(run_dir, "events.jsonl")

    def events():
        return runfolder.read_events(events_path)[0]

    frozen = []
    watching = threading.Event()

    def freeze_after_first_epoch():
        # A smoke run's remaining cells take seconds, less than the TUI's polls may: the run is
        # stopped (SIGSTOP) the moment its first epoch ends, so the `c` key lands inside a cell.
        while watching.is_set():
            if os.path.exists(events_path) and any(e["event"] == "epoch_end" for e in events()):
                pid = runfolder.RunFolder(run_dir).lock_holder()
                if pid is not None:
                    os.kill(pid, signal.SIGSTOP)
                    frozen.append(pid)
                return
            time.sleep(0.02)

    async def body():
        app = make_app(runs_dir, tmp_path)
        watching.set()
        watcher = threading.Thread(target=freeze_after_first_epoch, daemon=True)
        watcher.start()
        async with app.run_test(size=SMALL) as pilot:
            try:
                await pilot.pause()
                app.screen.show_recipe(RECIPE)
                await pilot.press("tab", "enter", "up", "enter")      # scale: smoke
                await pilot.pause()
                await pilot.press("s")
                await wait_for(pilot, lambda: frozen, RUN_TIMEOUT, "the first epoch")
                await wait_for(pilot, lambda: getattr(view_of(app, run_dir), "state", "") == "running", 30, "running")
                table = app.screen.query_one("#runs")
                table.move_cursor(row=table.get_row_index(run_dir))
                await pilot.press("c")
                await pilot.pause()
                os.kill(frozen[0], signal.SIGCONT)                   # the SIGINT is waiting for it
                await wait_for(pilot, lambda: view_of(app, run_dir).state == "interrupted", 120, "interrupted")
                assert events()[-1]["event"] == "run_end" and events()[-1]["status"] == "interrupted"
                await pilot.press("r")
                await wait_for(pilot, lambda: view_of(app, run_dir).state == "finished", RUN_TIMEOUT,
                               "the resumed run to finish")
                assert view_of(app, run_dir).cells_text == f"{SMOKE_CELLS}/{SMOKE_CELLS}"
            finally:
                watching.clear()
                for pid in frozen:
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                kill_launches(app)  # a failed wait must not leave a run training behind

    run(body())
    log = events()
    ends = [i for i, e in enumerate(log) if e["event"] == "run_end"]
    assert [log[i]["status"] for i in ends] == ["interrupted", "finished"]
    first, second = log[:ends[0] + 1], log[ends[0] + 1:]
    finished = {e["cell"] for e in first if e["event"] == "cell_end"}
    open_cells = [e["cell"] for e in first if e["event"] == "cell_start" and e["cell"] not in finished]
    starts = [e for e in second if e["event"] == "cell_start"]
    assert not finished & {e["cell"] for e in starts}, "a finished cell trained again"
    if open_cells:                                        # cancelled inside a cell: it resumes from its checkpoint
        done = max([e["epoch"] for e in first if e["event"] == "epoch_end" and e["cell"] == open_cells[-1]] or [0])
        assert starts[0]["cell"] == open_cells[-1]
        assert done <= starts[0]["resumed_from_epoch"] <= done + 1, (done, starts[0])
    rows = runfolder.read_results(os.path.join(run_dir, "results.csv"))
    assert len(rows) == len({r["cell"] for r in rows}) == SMOKE_CELLS


@pytest.mark.slow
def test_cancel_then_resume_a_real_run(tmp_path):
    """cpu scale (epochs of a few seconds): c sends SIGINT -> interrupted; r resumes from the checkpoint."""
    runs_dir = tmp_path / "runs"
    run_dir = os.path.abspath(os.path.join(runs_dir, RECIPE, "cpu-textures-seed0"))
    events_path = os.path.join(run_dir, "events.jsonl")

    def events():
        return runfolder.read_events(events_path)[0]

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=SMALL) as pilot:
            try:
                await pilot.pause()
                app.screen.show_recipe(RECIPE)
                await pilot.press("s")                                # default scale: cpu
                await wait_for(pilot, lambda: any(e["event"] == "epoch_end" for e in events()), RUN_TIMEOUT,
                               "the first epoch")
                await wait_for(pilot, lambda: getattr(view_of(app, run_dir), "state", "") == "running", 30, "running")
                table = app.screen.query_one("#runs")
                table.move_cursor(row=table.get_row_index(run_dir))
                await pilot.press("c")
                await wait_for(pilot, lambda: view_of(app, run_dir).state == "interrupted", 120, "interrupted")
                assert events()[-1]["event"] == "run_end" and events()[-1]["status"] == "interrupted"
                epochs_before = max(e["epoch"] for e in events() if e["event"] == "epoch_end"
                                    and e["cell"] == events()[1]["cell"])
                await pilot.press("r")
                await wait_for(pilot, lambda: sum(e["event"] == "run_start" for e in events()) == 2 and
                               sum(e["event"] == "cell_start" for e in events()) >= 2, RUN_TIMEOUT, "the resumed run")
                resumed = [e for e in events() if e["event"] == "cell_start"][-1]
                assert resumed["cell"] == events()[1]["cell"] or resumed["index"] > 1
                if resumed["cell"] == events()[1]["cell"]:
                    assert resumed["resumed_from_epoch"] >= 1 and resumed["resumed_from_epoch"] <= epochs_before
                await wait_for(pilot, lambda: view_of(app, run_dir).state == "running", 60, "running again")
                await pilot.press("c")
                await wait_for(pilot, lambda: view_of(app, run_dir).state == "interrupted", 120, "interrupted again")
            finally:
                kill_launches(app)  # a failed wait must not leave a cpu-scale run training behind

    run(body())
    statuses = [e["status"] for e in events() if e["event"] == "run_end"]
    assert statuses == ["interrupted", "interrupted"]


def test_failing_runs_show_failed_and_their_error(tmp_path):
    """Two real failures: a run whose checkpoint does not load (error event + run_end failed), and
    a paper-scale run whose TFDS dataset is not prepared (exit 2 before any folder exists)."""
    runs_dir = tmp_path / "runs"
    run_dir = smoke_dir(runs_dir)
    broken = os.path.join(run_dir, "cells", "mode=full,depth=1,seed=0")
    os.makedirs(broken)
    with open(os.path.join(broken, "epoch-0001.keras"), "wb") as f:
        f.write(b"not a keras file")
    empty_data = tmp_path / "tfds"
    empty_data.mkdir()

    async def body():
        app = make_app(runs_dir, tmp_path, data_dir=str(empty_data))
        async with app.run_test(size=LARGE) as pilot:
            await pilot.pause()
            app.screen.show_recipe(RECIPE)
            await pilot.press("tab", "enter", "up", "enter", "s")          # smoke
            await pilot.press("1")
            app.screen.query_one("#catalogue").focus()
            await pilot.press("tab", "enter", "down", "down", "enter", "s")   # smoke -> paper (cifar10)
            await wait_for(pilot, lambda: len(app.store.launches) == 2, 10, "two launches")
            paper_dir = app.store.launches[1].run_dir
            await wait_for(pilot, lambda: all(getattr(view_of(app, d), "state", "") == "failed"
                                              for d in (run_dir, paper_dir)), RUN_TIMEOUT, "both to fail")
            logged = [e for e in runfolder.read_events(os.path.join(run_dir, "events.jsonl"))[0] if e["event"] == "error"]
            assert logged and view_of(app, run_dir).error == logged[-1]["message"]
            screen = app.screen
            table = screen.query_one("#runs")
            for d, words in ((run_dir, logged[-1]["message"][:30]), (paper_dir, "cifar10")):
                table.move_cursor(row=table.get_row_index(d))
                await pilot.pause()
                assert "failed" in cells(table, d)
                info = str(screen.query_one("#run-info").render())
                assert "error:" in info and words in info, info
            assert not os.path.exists(paper_dir)                  # the CLI left nothing behind
            assert "spatialmix: error" in view_of(app, paper_dir).error

    run(body())


# ---------------------------------------------------------------- damaged and empty folders

def write_run(runs_dir, name, accuracies, status="finished", verdict="does not hold", t0=1_700_000_000.0,
              recipe=RECIPE, truncated=None):
    """A finished run folder as the engine writes it (for pictures that must not move)."""
    run_dir = os.path.join(runs_dir, recipe, name)
    os.makedirs(os.path.join(run_dir, "cells"), exist_ok=True)
    scale, dataset, _ = name.split("-")
    modes = ("full", "chans", "space")
    runfolder.atomic_write_json(os.path.join(run_dir, "run.json"), {
        "recipe": recipe, "scale": scale, "dataset": dataset, "seed": 0, "backend": "torch",
        "command": f"spatialmix run {recipe} --scale {scale}",
        "invocations": [{"argv": ["spatialmix", "run", recipe, "--scale", scale]}]})
    lines = [{"event": "run_start", "time": t0, "recipe": recipe, "scale": scale, "dataset": dataset,
              "backend": "torch", "seed": 0, "cells_total": 3, "cells_done": 0, "run_dir": run_dir, "argv": []}]
    t = t0
    for i, (mode, acc) in enumerate(zip(modes, accuracies), start=1):
        cell = f"mode={mode},depth=1,seed=0"
        lines.append({"event": "cell_start", "time": t, "cell": cell, "index": i, "cells_total": 3,
                      "config": {"mode": mode, "depth": 1}, "epochs": 4, "resumed_from_epoch": 0})
        for epoch in range(1, 5):
            t += 1
            lines.append({"event": "epoch_end", "time": t, "cell": cell, "epoch": epoch, "epochs": 4,
                          "metrics": {"loss": 2.3 - 0.3 * epoch * acc, "accuracy": acc * epoch / 4,
                                      "val_loss": 2.3 - 0.25 * epoch * acc, "val_accuracy": acc * epoch / 4.4},
                          "samples_per_s": 500.0 + i, "seconds": 1.0})
        lines.append({"event": "cell_end", "time": t, "cell": cell, "index": i, "cells_total": 3,
                      "metrics": {"test_accuracy": acc}, "wall_s": 4.0})
        runfolder.RunFolder(run_dir).append_row(
                             {"cell": cell, "mode": mode, "depth": 1, "seed": 0, "dataset": dataset, "scale": scale,
                              "backend": "torch", "test_accuracy": acc, "test_loss": 2.3 - acc})
    lines.append({"event": "run_end", "time": t + 1, "status": status, "cells_done": 3, "cells_total": 3,
                  "wall_s": 13.0})
    text = "".join(json.dumps(e) + "\n" for e in lines)
    if truncated is not None:
        text = text[:truncated]
    with open(os.path.join(run_dir, "events.jsonl"), "w") as f:
        f.write(text)
    if status == "finished":     # the engine freezes the verdict when a run finishes
        runfolder.RunFolder(run_dir).write_verdict({"recipe": recipe, "scale": scale, "verdict": verdict,
                                                    "cells": 3, "thresholds": {}})
    with open(os.path.join(run_dir, "report.md"), "w") as f:
        f.write(f"# {recipe}: fixture\n\n**The paper's claim:** chans ≈ full ≫ space.\n\n"
                f"**Measured here:** {verdict}. full {accuracies[0]:.2f}, chans {accuracies[1]:.2f}, "
                f"space {accuracies[2]:.2f}.\n\n| mode | acc |\n|---|---|\n"
                + "".join(f"| {m} | {a:.2f} |\n" for m, a in zip(modes, accuracies)))
    return os.path.abspath(run_dir)


def write_ray_run(runs_dir, t0=1_700_000_000.0):
    """A Ray run as its writers leave it mid-way: the driver's log (run_start, one cell_end) and
    each cell's own log (cell_start with its node and GPU, epoch_end), two cells still training."""
    run_dir = os.path.join(runs_dir, RECIPE, "smoke-digits-seed0")
    folder = runfolder.RunFolder(run_dir).create()
    folder.record_invocation({"recipe": RECIPE, "scale": "smoke", "dataset": "digits", "seed": 0, "backend": "torch"},
                             {"argv": ["spatialmix", "run", RECIPE, "--scale", "smoke", "--executor", "ray"]})
    log = folder.event_log()
    log.emit("run_start", recipe=RECIPE, scale="smoke", dataset="digits", backend="torch", seed=0, cells_total=3,
             cells_done=0, run_dir=folder.path, argv=[])
    placed = {"mode=full,depth=1,seed=0": ("node-a", "0"), "mode=chans,depth=1,seed=0": ("node-a", "1"),
              "mode=space,depth=1,seed=0": ("node-b", "0")}
    for i, (cell, (host, gpu)) in enumerate(placed.items(), start=1):
        cell_log = folder.cell_event_log(cell)
        cell_log.emit("cell_start", cell=cell, index=i, cells_total=3, config={}, epochs=2, resumed_from_epoch=0,
                      host=host, node=f"{host}-id", gpus=[gpu], pid=1000 + i)
        cell_log.emit("epoch_end", cell=cell, epoch=1, epochs=2, metrics={"loss": 2.0 - i / 10, "accuracy": 0.1 * i},
                      samples_per_s=100.0, seconds=1.0)
    log.emit("cell_end", cell="mode=full,depth=1,seed=0", index=1, cells_total=3, metrics={"test_accuracy": 0.5},
             wall_s=2.0, host="node-a", node="node-a-id", gpus=["0"])
    return folder


def test_a_ray_run_is_followed_through_its_cells_logs_with_node_and_gpu(tmp_path):
    """Under --executor ray a cell's epochs are in its own log; the Runs screen merges them and
    shows where each cell trains: the table's node · GPU column, the info line, the legend."""
    runs_dir = tmp_path / "runs"
    folder = write_ray_run(runs_dir)
    code = ("import sys, time; from recipes.core.runfolder import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(600)")
    driver = subprocess.Popen([sys.executable, "-c", code, folder.path], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)    # a live driver holds the run lock: the run is running

    async def body():
        assert driver.stdout.readline().strip() == "locked"
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=LARGE) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: getattr(view_of(app, folder.path), "state", None) == "running", 30, "running")
            v = view_of(app, folder.path)
            assert v.cells_text == "1/3"
            assert [(c, e, w) for c, e, _, w in v.training] == [("mode=chans,depth=1,seed=0", 1, "node-a GPU 1"),
                                                                 ("mode=space,depth=1,seed=0", 1, "node-b GPU 0")]
            table = app.screen.query_one("#runs")
            assert str(table.get_cell(folder.path, "where")) == "node-a GPU 1, node-b GPU 0"
            info = str(app.screen.query_one("#run-info").render())
            assert "chans d1 s0 1/2 on node-a GPU 1" in info and "space d1 s0 1/2 on node-b GPU 0" in info
            assert "full d1 s0 @ node-a GPU 0" in info                       # the legend: every cell's
            # followed live: a new epoch in a cell's own log shows on the next scan
            folder.cell_event_log("mode=space,depth=1,seed=0").emit(
                "epoch_end", cell="mode=space,depth=1,seed=0", epoch=2, epochs=2, metrics={"loss": 1.0}, seconds=1.0)
            await wait_for(pilot, lambda: view_of(app, folder.path).curves["mode=space,depth=1,seed=0"].epoch == [1, 2],
                           30, "the new epoch")
            driver.kill()
            driver.wait()
            folder.event_log().emit("run_end", status="interrupted", cells_done=1, cells_total=3, wall_s=3.0)
            await wait_for(pilot, lambda: view_of(app, folder.path).state == "interrupted", 30, "interrupted")
            assert str(table.get_cell(folder.path, "where")) == "ray · 2 hosts"

    try:
        run(body())
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_truncated_event_log_and_empty_folder_do_not_crash(tmp_path):
    runs_dir = tmp_path / "runs"
    full = write_run(runs_dir, "smoke-digits-seed0", accuracies=(0.9, 0.8, 0.5))
    events_path = os.path.join(full, "events.jsonl")
    whole = open(events_path).read()
    cut = whole.rindex('{"event": "run_end"') + 25          # the last line, half written
    with open(events_path, "w") as f:
        f.write(whole[:cut])
    with open(events_path, "rb+") as f:                      # and a damaged line in the middle
        data = f.read()
        first_end = data.index(b"\n") + 1
        f.seek(0)
        f.write(data[:first_end] + b'{"event": "cell_start", "ti\n' + data[first_end:])
    empty = os.path.join(runs_dir, RECIPE, "cpu-textures-seed0")
    os.makedirs(empty)

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: view_of(app, full) and view_of(app, empty), 60, "both folders")
            assert view_of(app, empty).state == "no events"
            v = view_of(app, full)
            assert v.state == "interrupted" and v.cells_text == "3/3" and v.bad_lines == 1
            for key in (full, empty):                            # both can be looked at
                table = app.screen.query_one("#runs")
                table.move_cursor(row=table.get_row_index(key))
                await pilot.pause()
            await pilot.press("3")
            await pilot.pause()
            with open(events_path, "a") as f:                    # the writer finishes its line
                f.write(whole[cut:])
            await pilot.press("2")
            await wait_for(pilot, lambda: view_of(app, full).state == "finished", 60, "the completed line")

    run(body())


def test_overlay_of_marked_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    a = write_run(runs_dir, "smoke-digits-seed0", accuracies=(0.9, 0.8, 0.5), t0=1_700_000_000.0)
    b = write_run(runs_dir, "smoke-textures-seed0", accuracies=(0.6, 0.5, 0.3), t0=1_700_000_100.0)

    async def body():
        app = make_app(runs_dir, tmp_path)
        async with app.run_test(size=LARGE) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: len(app.views) == 2, 20, "two runs")
            screen = app.screen
            table = screen.query_one("#runs")
            for key in (a, b):
                table.move_cursor(row=table.get_row_index(key))
                await pilot.press("space")
            await pilot.pause()
            assert screen.marked == [a, b]
            series = screen._series(screen.current())
            assert {label for label, _, _ in series} == {"smoke-digits-seed0", "smoke-textures-seed0"}
            assert len(series) == 6 and len(screen.query_one("#acc-plot")._datasets) == 6
            assert "marked runs overlaid" in str(screen.query_one("#run-info").render())
            await pilot.press("v")                               # test (val) metrics
            await pilot.pause()
            assert screen.val
            await pilot.press("escape")
            await pilot.pause()
            assert screen.marked == [] and len(screen.query_one("#acc-plot")._datasets) == 3

    run(body())


# ---------------------------------------------------------------- device panel

class FakeNVMLError(Exception):
    pass


def fake_nvml(count=2, fail=False):
    """A stand-in for the `pynvml` module (there is no GPU on these machines)."""
    def init():
        if fail:
            raise FakeNVMLError("NVML Shared Library Not Found")

    return types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: f"Fake GPU {h}".encode(),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=37 + h, memory=10),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=10 * 2**30, total=40 * 2**30, free=30 * 2**30),
        nvmlDeviceGetTemperature=lambda h, kind: 61 + h,
        nvmlDeviceGetPowerUsage=lambda h: 250_000,                 # mW
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 400_000,
    )


def panel_text(app):
    return str(app.screen.query_one(DevicePanel).render())


def test_device_panel_with_fake_nvml(tmp_path):
    async def body():
        app = make_app(tmp_path / "runs", tmp_path, sampler=device_mod.DeviceSampler(nvml=fake_nvml()))
        async with app.run_test(size=LARGE) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: "GPU1" in panel_text(app), 10, "the GPUs")
            text = panel_text(app)
            assert "GPU0 Fake GPU 0 · util 37% · mem 10.0/40.0 GiB · 61°C · 250/400 W" in text
            assert "GPU1 Fake GPU 1 · util 38% · mem 10.0/40.0 GiB · 62°C · 250/400 W" in text
            assert "CPU" not in text

    run(body())


def test_device_panel_with_the_real_nvml():
    """The real pynvml, on whatever machine runs the tests: a line per GPU where there are GPUs,
    "no GPU (...)" with CPU and RAM where there are none; never an error."""
    real = device_mod.DeviceSampler()
    try:
        sample = real.sample()
        lines = device_mod.format_sample(sample)
    finally:
        real.close()
    if sample.gpus:
        assert sample.note == "" and len(lines) == len(sample.gpus)
        for gpu, line in zip(sample.gpus, lines):
            assert line.startswith(f"GPU{gpu.index} {gpu.name} · util ") and " GiB · " in line, line
            assert gpu.mem_total and gpu.mem_total > 0
    else:
        assert sample.note.startswith("no GPU") and sample.ram_total > 0
        assert len(lines) == 1 and lines[0].startswith("no GPU") and "RAM" in lines[0]


def test_device_panel_without_nvml(tmp_path):
    sampler = device_mod.DeviceSampler(nvml=fake_nvml(fail=True))
    first = sampler.sample()
    assert first.gpus == [] and "no GPU" in first.note and first.ram_total > 0

    async def body():
        app = make_app(tmp_path / "runs", tmp_path, sampler=sampler)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: "RAM" in panel_text(app) and "CPU ?" not in panel_text(app), 10,
                           "CPU and RAM")
            text = panel_text(app)
            assert "no GPU (NVML Shared Library Not Found)" in text and "% of" in text and "GiB" in text

    run(body())


def test_device_sampling_does_not_block_the_ui(tmp_path):
    """A sample that never returns (until the test says so) leaves the keys working."""
    import threading

    release, started = threading.Event(), threading.Event()

    class StuckSampler(StillSampler):
        def sample(self):
            started.set()
            release.wait(60)
            return super().sample()

    async def body():
        app = make_app(tmp_path / "runs", tmp_path, sampler=StuckSampler())
        async with app.run_test(size=SMALL) as pilot:
            await wait_for(pilot, started.is_set, 20, "the sampler to start")
            for key, mode in (("2", "runs"), ("3", "results"), ("1", "recipes"), ("2", "runs")):
                await pilot.press(key)
                await pilot.pause()
                assert app.current_mode == mode
            assert not release.is_set() and app.device_sample is None   # all while the sample hung
            assert "sampling" in panel_text(app)
            release.set()
            await wait_for(pilot, lambda: app.device_sample is not None, 20, "the sample")
            assert "no GPU (test)" in panel_text(app)

    try:
        run(body())
    finally:
        release.set()


def test_screenshot_key_writes_svg(tmp_path):
    async def body():
        app = make_app(tmp_path / "runs", tmp_path)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.press("ctrl+s")
            await pilot.pause()
        svgs = [p for p in os.listdir(tmp_path) if p.endswith(".svg")]
        assert svgs and open(os.path.join(tmp_path, svgs[0])).read().lstrip().startswith("<svg")

    run(body())


# ---------------------------------------------------------------- snapshots (80×24)

SNAP_RUNS = "/tmp/spatialmix-tui-snapshot/runs"      # fixed: the path shows in the header


@pytest.fixture
def snap_runs():
    shutil.rmtree(os.path.dirname(SNAP_RUNS), ignore_errors=True)
    write_run(SNAP_RUNS, "smoke-digits-seed0", accuracies=(0.9, 0.8, 0.5), verdict="inconclusive", t0=1_700_000_000.0)
    write_run(SNAP_RUNS, "cpu-textures-seed0", accuracies=(0.61, 0.56, 0.53), t0=1_700_000_100.0)
    yield SNAP_RUNS
    shutil.rmtree(os.path.dirname(SNAP_RUNS), ignore_errors=True)


def snap_app(runs_dir):
    return tui_app.SpatialmixApp(runs_dir=runs_dir, recipes=[RECIPE], sampler=StillSampler(), interval=3600,
                                 export_dir="/tmp", screenshot_dir="/tmp", backend="torch")


async def settle(pilot):
    while pilot.app.scans < 1 or pilot.app.device_sample is None:
        await pilot.pause(0.1)
    await settled(pilot, 0.3)     # the footer lays out its keys last (slowly, under load)


@pytest.mark.parametrize("screen,keys", [("recipes", []), ("runs", ["2"]), ("results", ["3"])])
def test_snapshot(snap_compare, snap_runs, screen, keys):
    async def run_before(pilot):
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
        await settle(pilot)
        await pilot.pause(0.5)

    assert snap_compare(snap_app(snap_runs), terminal_size=SMALL, run_before=run_before)


# ---------------------------------------------------------------- --serve

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def served_screen(page, timeout=90):
    """What the served app sends over the page's websocket (textual-serve starts the app per session)."""
    import re

    import aiohttp

    url = re.search(r'data-session-websocket-url="([^"]+)"', page).group(1)
    assert url.startswith("ws://127.0.0.1:")
    got, deadline = b"", time.monotonic() + timeout
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(json.dumps(["resize", {"width": 80, "height": 24}]))
        while "spatialmix · recipes" not in got.decode("utf-8", "replace") and time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0.1))
            except asyncio.TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.BINARY:
                got += msg.data
            elif msg.type == aiohttp.WSMsgType.TEXT:
                got += msg.data.encode()
            else:
                break
    return got.decode("utf-8", "replace")


def test_serve_answers_on_loopback(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tui.app", "--serve", str(port), "--runs-dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200
                    body = response.read().decode("utf-8", "replace")
            except (ConnectionError, OSError):
                assert process.poll() is None, "spatialmix-tui --serve exited"
                time.sleep(0.5)
        assert body is not None, "no answer on 127.0.0.1 within 60 s"
        assert "spatialmix-tui" in body
        assert "spatialmix · recipes" in asyncio.run(served_screen(body)), "the app did not draw in the browser session"
        bound = [c.laddr.ip for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert bound == ["127.0.0.1"], f"port {port} listens on {bound}, not on loopback only"
    finally:
        stop(process)


def test_the_report_viewer_takes_an_empty_table_of_contents():
    """Textual's Markdown document posts a None table of contents (on mount, or while a report
    loads); the report tab must take it without a crash, and still build a real one after."""
    from textual.app import App
    from textual.widgets import Markdown, Tree

    from tui.widgets import ReportViewer

    class One(App):
        def compose(self):
            yield ReportViewer("# Report\n\n## Verdict\n\nholds\n")

    async def body():
        app = One()
        async with app.run_test(size=SMALL) as pilot:
            viewer = app.query_one(ReportViewer)
            await pilot.pause()
            viewer.document.post_message(Markdown.TableOfContentsUpdated(viewer.document, None))
            await pilot.pause()
            await viewer.document.update("# Again\n\n## Table\n")
            await pilot.pause()
            labels = [str(node.label) for node in app.query_one(Tree).root.children]
            assert app.is_running and labels and "Again" in labels[0]
        assert app.return_code in (None, 0)

    run(body())
