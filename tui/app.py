"""spatialmix-tui: pick a recipe, start it, watch it train, compare runs, browse results.

A Textual front end over run folders. It reads what `spatialmix run` writes (run.json,
events.jsonl, results.csv, report.md, figure.png) and trains only by starting `spatialmix
run` as a subprocess in its own session, so a run outlives the TUI and a run started in
another terminal shows up here too. It never imports Keras and computes nothing about the
experiment: the verdict is the report's, the state is the event log's.

    spatialmix-tui [--runs-dir DIR] [--data-dir DIR] [--serve [PORT]]
"""

import argparse
import csv
import os
import shlex
import subprocess
import sys
import threading

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (Button, DataTable, Footer, Header, Input, Label, Markdown, MarkdownViewer, Select,
                             Static, TabbedContent, TabPane)
from textual_plot import HiResMode, PlotWidget

from recipes.core import registry
from recipes.core.choices import BACKENDS, SCALES, default_backend
from tui import device as device_mod
from tui import runs as runs_mod

COLORS = ("#e06c75", "#61afef", "#98c379", "#e5c07b", "#c678dd", "#56b6c2", "#d19a66", "#abb2bf",
          "#ff79c6", "#8be9fd")
STATE_STYLE = {"running": "bold green", "starting": "green", "finished": "bold cyan", "failed": "bold red",
               "interrupted": "yellow", "no events": "dim"}
VERDICT_STYLE = {"holds": "bold green", "does not hold": "bold red", "inconclusive": "yellow"}

HELP = """\
# spatialmix-tui

A front end over the run folders under the runs dir. It starts `spatialmix run` as a
separate process: a run goes on if the TUI closes, and runs started elsewhere show up here.

## Everywhere
| key | does |
|---|---|
| `1` `2` `3` | Recipes, Runs, Results screens |
| `ctrl+p` | command palette: find a recipe or a run by name |
| `ctrl+s` | save an SVG screenshot of the screen |
| `?` | this help (`escape` closes it) |
| `q` | quit (runs keep going) |
| `tab` | next control; the mouse works too |

## Recipes
| key | does |
|---|---|
| `↑` `↓` | pick a recipe; the pane shows its claim, grid and budget per scale |
| `tab` | to the scale, dataset, backend and seed controls (`enter` opens a list) |
| `s` | start the run (`spatialmix run ...` in the background) |

## Runs
| key | does |
|---|---|
| `↑` `↓` | pick a run: its curves per cell (loss, accuracy) |
| `space` | mark a run; two or more marked runs overlay their curves |
| `v` | train or test (val) metrics |
| `c` | cancel a running run (SIGINT: the folder stays resumable) |
| `r` | resume an interrupted or failed run (the same command again) |
| `enter` | the run's results |

## Results
| key | does |
|---|---|
| click a header | sort by that column (again: reverse) |
| `/` | filter: `mode=chans`, `test_accuracy>0.5`, or any text |
| `e` | export the table as shown to CSV |
| `t` `m` `f` | table, report (markdown), figure |
| `o` | open the figure in the system viewer |
"""


def short_cell(cell_id):
    """'mode=full,depth=1,seed=0' -> 'full d1 s0'."""
    parts = []
    for part in (cell_id or "").split(","):
        key, _, value = part.partition("=")
        parts.append(value if value and not value.replace(".", "").replace("-", "").isdigit() else
                     f"{key[:1]}{value}")
    return " ".join(parts)


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def sort_key(value):
    number = _num(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))


def row_matches(columns, row, query):
    """`col=value`, `col!=value`, `col>x`, `col<x`, or free text anywhere in the row."""
    query = query.strip()
    if not query:
        return True
    for op in ("!=", ">=", "<=", "=", ">", "<"):
        if op in query:
            name, _, value = query.partition(op)
            name, value = name.strip(), value.strip()
            if name in columns:
                cell = row[columns.index(name)]
                if op in ("=", "!="):
                    a, b = _num(cell), _num(value)
                    equal = (a == b) if a is not None and b is not None else cell.lower() == value.lower()
                    return equal if op == "=" else not equal
                a, b = _num(cell), _num(value)
                if a is None or b is None:
                    return False
                return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
    return any(query.lower() in cell.lower() for cell in row)


# ---------------------------------------------------------------- command palette

class SpatialmixCommands(Provider):
    """Recipes and runs by name."""

    def _items(self):
        app = self.app
        for rid, recipe in app.catalogue.items():
            title = getattr(recipe, "title", "") or ""
            yield f"recipe {rid}  {title}", (lambda r=rid: app.show_recipe(r)), "go to the recipe"
        for view in app.views:
            yield (f"run {view.label}  [{view.state}]", (lambda k=view.key: app.show_run(k)), "watch the run")
            if view.has_results:
                yield (f"results {view.label}", (lambda k=view.key: app.show_results(k)), "its table, report, figure")

    async def discover(self):
        for text, callback, help_text in self._items():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query):
        matcher = self.matcher(query)
        for text, callback, help_text in self._items():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


# ---------------------------------------------------------------- widgets and screens

class DevicePanel(Static):
    """GPU utilisation, memory, temperature and power per GPU (NVML); else CPU and RAM."""

    DEFAULT_CSS = "DevicePanel { height: auto; max-height: 5; padding: 0 1; background: $boost; }"

    def on_mount(self):
        self.show(self.app.device_sample)

    def show(self, sample):
        self.update("\n".join(device_mod.format_sample(sample)))


class ReportViewer(MarkdownViewer):
    """Textual's MarkdownViewer. Its document posts an empty (None) table of contents when it
    mounts; if the report was already loaded by then, the contents tree would iterate None."""

    def _on_markdown_table_of_contents_updated(self, message):
        if message.table_of_contents is not None:
            super()._on_markdown_table_of_contents_updated(message)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $accent; background: $surface; }
    """

    def compose(self):
        with VerticalScroll():
            yield Markdown(HELP)


class RecipesScreen(Screen):
    BINDINGS = [Binding("s", "start", "Start run")]
    DEFAULT_CSS = """
    #catalogue { height: 1fr; min-height: 4; }
    #controls { height: 3; }
    #controls Select { width: 1fr; }
    #seed { width: 9; }
    #start { width: 11; min-width: 11; }
    #detail { height: 1fr; min-height: 4; border-top: solid $accent; padding: 0 1; }
    """

    def compose(self):
        yield Header()
        yield DataTable(id="catalogue", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="controls"):
            yield Select([(s, s) for s in SCALES], value="cpu", allow_blank=False, id="scale", prompt="scale")
            yield Select([], id="dataset", prompt="dataset")
            yield Select([(b, b) for b in BACKENDS], value=self.app.backend, allow_blank=False, id="backend",
                         prompt="backend")
            yield Input("0", placeholder="seed", id="seed", type="integer")
            yield Button("Start s", id="start", variant="success")
        with VerticalScroll(id="detail"):
            yield Static(id="detail-text")
        yield Footer()

    def on_mount(self):
        self.title = "spatialmix · recipes"
        self.sub_title = self.app.runs_dir
        table = self.query_one("#catalogue", DataTable)
        table.add_column("recipe", key="id")
        table.add_column("paper", key="figure")
        for scale in SCALES:
            table.add_column(scale, key=scale)
        table.add_column("title", key="title")
        for rid, recipe in self.app.catalogue.items():
            if isinstance(recipe, Exception):
                table.add_row(rid, "", *[""] * len(SCALES), Text(f"cannot load: {recipe}", "red"), key=rid)
            else:
                table.add_row(rid, recipe.paper, *[""] * len(SCALES), recipe.title, key=rid)
        table.focus()
        self.refresh_views()
        if self.app.catalogue:
            self.show_recipe(next(iter(self.app.catalogue)))

    def on_screen_resume(self):
        self.refresh_views()
        if self.app.pending_recipe:
            self.show_recipe(self.app.pending_recipe)
            self.app.pending_recipe = None

    def refresh_views(self):
        table = self.query_one("#catalogue", DataTable)
        for rid in self.app.catalogue:
            verdicts = self.app.verdicts.get(rid, {})
            for scale in SCALES:
                v = verdicts.get(scale)
                table.update_cell(rid, scale, Text(v, VERDICT_STYLE.get(v, "")) if v else Text("·", "dim"),
                                  update_width=True)
        if self.app.verdicts != getattr(self, "_verdicts_shown", None):
            self._verdicts_shown = self.app.verdicts
            self._update_detail()

    def current_recipe(self):
        table = self.query_one("#catalogue", DataTable)
        if not table.row_count:
            return None
        rid = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        recipe = self.app.catalogue.get(rid)
        return None if isinstance(recipe, Exception) else recipe

    def show_recipe(self, rid):
        table = self.query_one("#catalogue", DataTable)
        try:
            table.move_cursor(row=table.get_row_index(rid))
        except Exception:
            return
        self._update_detail()

    @on(DataTable.RowHighlighted, "#catalogue")
    def _row(self, event):
        self._update_detail()

    @on(Select.Changed, "#scale")
    def _scale(self, event):
        self._update_datasets()

    def _update_datasets(self):
        recipe = self.current_recipe()
        select = self.query_one("#dataset", Select)
        scale_name = self.query_one("#scale", Select).value
        if recipe is None or scale_name not in recipe.scales:
            select.set_options([])
            return
        scale = recipe.scales[scale_name]
        names = [scale.dataset, *[d for d in scale.datasets if d != scale.dataset]]
        select.set_options([(n, n) for n in names])
        select.value = scale.dataset

    def _update_detail(self):
        recipe = self.current_recipe()
        text = self.query_one("#detail-text", Static)
        if recipe is None:
            text.update("")
            return
        self._update_datasets()
        out = Text()
        out.append(f"{recipe.id}", "bold")
        out.append(f"  {recipe.title}\n", "")
        out.append(f"paper {recipe.paper}\n", "italic")
        out.append("claim ", "bold")
        out.append(f"{recipe.claim}\n")
        out.append("metric ", "bold")
        out.append(f"{recipe.metric}\n")
        verdicts = self.app.verdicts.get(recipe.id, {})
        for name, scale in recipe.scales.items():
            cells = 1
            for values in scale.grid.values():
                cells *= len(values)
            cells *= len(scale.seeds)
            out.append(f"\n[{name}] ", "bold cyan")
            out.append(f"{scale.dataset}" + (f" (also {', '.join(scale.datasets)})" if scale.datasets else ""))
            v = verdicts.get(name)
            out.append("  latest: ")
            out.append(v or "no run yet", VERDICT_STYLE.get(v, "dim"))
            out.append("\n  grid   " + " × ".join(f"{k} {list(v)}" for k, v in scale.grid.items())
                       + f" × seeds {list(scale.seeds)} = {cells} cells")
            if scale.model:
                out.append("\n  model  " + ", ".join(f"{k}={v}" for k, v in scale.model.items()))
            out.append("\n  budget " + ", ".join(f"{k} {v}" for k, v in scale.budget.items()))
        text.update(out)

    def action_start(self):
        recipe = self.current_recipe()
        if recipe is None:
            self.app.notify("no recipe selected", severity="warning")
            return
        scale = self.query_one("#scale", Select).value
        dataset = self.query_one("#dataset", Select).value
        dataset = None if dataset is Select.BLANK else dataset
        backend = self.query_one("#backend", Select).value
        seed_text = self.query_one("#seed", Input).value.strip() or "0"
        try:
            seed = int(seed_text)
            assert seed >= 0
        except (ValueError, AssertionError):
            self.app.notify(f"seed must be an integer >= 0, not {seed_text!r}", severity="error")
            return
        self.app.start_run(recipe.id, scale, dataset or recipe.scales[scale].dataset, backend, seed)

    @on(Button.Pressed, "#start")
    def _start_pressed(self):
        self.action_start()


class RunsScreen(Screen):
    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "cancel", "Cancel"),
        Binding("r", "resume", "Resume"),
        Binding("v", "toggle_val", "Train/test"),
        Binding("enter", "results", "Results", show=False),
        Binding("escape", "unmark", "Unmark", show=False),
    ]
    DEFAULT_CSS = """
    #runs { height: 1fr; min-height: 4; max-height: 14; }
    #run-info { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    #plots { height: 2fr; min-height: 7; }
    #plots PlotWidget { width: 1fr; }
    """

    def __init__(self):
        super().__init__()
        self.marked = []
        self.val = False
        self._plotted = None

    def compose(self):
        yield Header()
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="run-info")
        with Horizontal(id="plots"):
            yield PlotWidget(id="loss-plot", allow_pan_and_zoom=True)
            yield PlotWidget(id="acc-plot", allow_pan_and_zoom=True)
        yield DevicePanel(id="device")
        yield Footer()

    def on_mount(self):
        self.title = "spatialmix · runs"
        self.sub_title = self.app.runs_dir
        table = self.query_one("#runs", DataTable)
        for label, key in (("", "mark"), ("state", "state"), ("run", "run"), ("cells", "cells"),
                           ("epoch", "epoch"), ("ETA", "eta"), ("samples/s", "rate"), ("verdict", "verdict"),
                           ("backend", "backend")):
            table.add_column(label, key=key)
        for plot, label in ((self.query_one("#loss-plot", PlotWidget), "loss"),
                            (self.query_one("#acc-plot", PlotWidget), "accuracy")):
            plot.margin_left = 6
            plot.margin_bottom = 2
            plot.margin_top = 1
            plot.set_xlabel("epoch")
            plot.set_ylabel(label)
        table.focus()
        self.refresh_views()

    def on_screen_resume(self):
        self.refresh_views()

    def current(self):
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.app.view(key)

    def refresh_views(self):
        table = self.query_one("#runs", DataTable)
        views = self.app.views
        keys = [v.key for v in views]
        existing = [row.key.value for row in table.ordered_rows]
        if existing != keys:
            focus_key = self.app.focus_run or (self.current().key if self.current() else None)
            table.clear()
            for v in views:
                table.add_row(*self._cells(v), key=v.key)
            if focus_key in keys:
                table.move_cursor(row=keys.index(focus_key))
        else:
            for v in views:
                for column, value in zip(("mark", "state", "run", "cells", "epoch", "eta", "rate", "verdict",
                                          "backend"), self._cells(v)):
                    table.update_cell(v.key, column, value, update_width=True)
        if self.app.focus_run in keys:
            table.move_cursor(row=keys.index(self.app.focus_run))
            self.app.focus_run = None
        self._update_info()
        self._update_plots()

    def _cells(self, v):
        mark = Text("●", COLORS[self.marked.index(v.key) % len(COLORS)]) if v.key in self.marked else Text(" ")
        eta = runs_mod.format_seconds(v.eta_run) if v.state == "running" else ""
        rate = f"{v.samples_per_s:.0f}" if v.samples_per_s else ""
        return (mark, Text(v.state, STATE_STYLE.get(v.state, "")), v.label, v.cells_text, v.epoch_text, eta, rate,
                Text(v.verdict or "", VERDICT_STYLE.get(v.verdict, "")), v.backend or "")

    @on(DataTable.RowHighlighted, "#runs")
    def _row(self, event):
        self._update_info()
        self._update_plots()

    def _update_info(self):
        v = self.current()
        info = self.query_one("#run-info", Static)
        if v is None:
            info.update(Text(f"no runs under {self.app.runs_dir} yet: start one on the Recipes screen (1, then s)",
                             "dim"))
            return
        out = Text()
        out.append(v.state, STATE_STYLE.get(v.state, ""))
        out.append(f" {v.label}  cells {v.cells_text}")
        if v.state == "running" and v.current_cell:
            out.append(f"  cell {short_cell(v.current_cell)} epoch {v.epoch_text or '0'}")
            if v.eta_cell is not None:
                out.append(f"  ETA cell {runs_mod.format_seconds(v.eta_cell)} run {runs_mod.format_seconds(v.eta_run)}")
        if v.samples_per_s:
            out.append(f"  {v.samples_per_s:.0f} samples/s")
        if v.verdict:
            out.append("  verdict ")
            out.append(v.verdict, VERDICT_STYLE.get(v.verdict, ""))
        if v.error:
            out.append("\nerror: ", "bold red")
            out.append(v.error, "red")
        if v.bad_lines:
            out.append(f"\n{v.bad_lines} unreadable line(s) in events.jsonl skipped", "yellow")
        out.append("\n")
        out.append_text(self._legend(v))
        info.update(out)

    def _series(self, v):
        """[(label, color, CellCurve)] to draw: one run's cells, or every marked run's."""
        marked = [self.app.view(k) for k in self.marked]
        marked = [m for m in marked if m is not None]
        if len(marked) >= 2:
            return [(m.name if len({x.name for x in marked}) == len(marked) else m.label,
                     COLORS[self.marked.index(m.key) % len(COLORS)], c)
                    for m in marked for c in sorted(m.curves.values(), key=lambda c: c.index)]
        if v is None:
            return []
        curves = sorted(v.curves.values(), key=lambda c: c.index)
        return [(short_cell(c.cell), COLORS[i % len(COLORS)], c) for i, c in enumerate(curves)]

    def _legend(self, v):
        out = Text()
        seen = []
        for label, color, _ in self._series(v):
            if label in seen:
                continue
            seen.append(label)
            out.append("■ ", color)
            out.append(f"{label}  ")
        if len(self.marked) >= 2:
            out.append("(marked runs overlaid)", "dim")
        out.append("test (val) metrics" if self.val else "train metrics", "dim italic")
        return out

    def _update_plots(self):
        v = self.current()
        series = self._series(v)
        signature = (self.val, tuple((label, color, c.cell, len(c.epoch)) for label, color, c in series))
        if signature == self._plotted:
            return
        self._plotted = signature
        prefix = "val_" if self.val else ""
        for plot_id, metric in (("#loss-plot", "loss"), ("#acc-plot", "accuracy")):
            plot = self.query_one(plot_id, PlotWidget)
            plot.clear()
            plot.set_ylabel(("test " if self.val else "") + metric)
            for _, color, curve in series:
                pairs = [(e, y) for e, y in zip(curve.epoch, curve.metrics.get(prefix + metric, []))
                         if isinstance(y, (int, float))]
                if not pairs:
                    continue
                xs, ys = zip(*pairs)
                if len(xs) == 1:
                    plot.scatter(xs, ys, marker="●", marker_style=color)
                else:
                    plot.plot(xs, ys, line_style=color, hires_mode=HiResMode.BRAILLE)

    def action_mark(self):
        v = self.current()
        if v is None:
            return
        if v.key in self.marked:
            self.marked.remove(v.key)
        else:
            self.marked.append(v.key)
        self._plotted = None
        self.refresh_views()
        if len(self.marked) >= 2:
            self.app.notify(f"{len(self.marked)} runs overlaid")

    def action_unmark(self):
        self.marked.clear()
        self._plotted = None
        self.refresh_views()

    def action_toggle_val(self):
        self.val = not self.val
        self._update_info()
        self._update_plots()

    def action_cancel(self):
        v = self.current()
        if v is None or v.state not in ("running", "starting") or not v.pid:
            self.app.notify("only a running run can be cancelled", severity="warning")
            return
        try:
            runs_mod.cancel_run(v.pid)
        except OSError as e:
            self.app.notify(f"cannot signal pid {v.pid}: {e}", severity="error")
            return
        self.app.notify(f"SIGINT sent to {v.label} (pid {v.pid}); it stops after writing its state")

    def action_resume(self):
        v = self.current()
        if v is None or v.state not in ("interrupted", "failed"):
            self.app.notify("only an interrupted or failed run can be resumed", severity="warning")
            return
        try:
            argv = list(v.argv) if v.launch else runs_mod.resume_argv(v)
        except (ValueError, TypeError) as e:
            self.app.notify(str(e), severity="error")
            return
        if v.launch:  # a start that failed before it made a folder: the same start again
            self.app.store.launches = [l for l in self.app.store.launches if l.argv != v.argv]
        self.app.launch(argv, v.run_dir if os.path.isabs(v.run_dir) else None)

    @on(DataTable.RowSelected, "#runs")
    def _selected(self, event):
        self.action_results()

    def action_results(self):
        v = self.current()
        if v is not None:
            self.app.show_results(v.key)


class ResultsScreen(Screen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("e", "export", "Export CSV"),
        Binding("o", "open_figure", "Open figure"),
        Binding("t", "tab('table')", "Table", show=False),
        Binding("m", "tab('report')", "Report", show=False),
        Binding("f", "tab('figure')", "Figure", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = """
    #results-head { height: 3; }
    #result-run { width: 1fr; }
    #verdict { width: auto; max-width: 40; padding: 1 1 0 1; }
    #filter { display: none; }
    #filter.shown { display: block; }
    #tabs { height: 1fr; }
    #tabs > ContentSwitcher { height: 1fr; }
    #tabs TabPane { height: 1fr; padding: 0; }
    #report-md { height: 1fr; }
    #figure-pane { height: 1fr; }
    #results-table { height: 1fr; }
    #table-status { height: 1; padding: 0 1; }
    #figure-pane Static { padding: 0 1; }
    """

    def __init__(self):
        super().__init__()
        self.run_dir = None
        self.columns, self.rows, self.shown = [], [], []
        self.sort_col, self.sort_rev = None, False
        self.query_text = ""
        self._loaded = None

    def compose(self):
        yield Header()
        with Horizontal(id="results-head"):
            yield Select([], id="result-run", prompt="run (with results)")
            yield Label("", id="verdict")
        with TabbedContent(id="tabs", initial="table"):
            with TabPane("Table", id="table"):
                yield Input(placeholder="filter: mode=chans, test_accuracy>0.5, or text; enter applies, escape clears",
                            id="filter")
                yield Static("", id="table-status")
                yield DataTable(id="results-table", zebra_stripes=True, cursor_type="row")
            with TabPane("Report", id="report"):
                yield ReportViewer("", id="report-md", show_table_of_contents=False)
            with TabPane("Figure", id="figure"):
                yield VerticalScroll(Static("", id="figure-note"), id="figure-pane")
        yield Footer()

    def on_mount(self):
        self.title = "spatialmix · results"
        self.sub_title = self.app.runs_dir
        self.refresh_views()

    def on_screen_resume(self):
        self.refresh_views()

    def refresh_views(self):
        candidates = [v for v in self.app.views if v.has_results or os.path.exists(os.path.join(v.run_dir, "report.md"))]
        select = self.query_one("#result-run", Select)
        options = [(v.label, v.key) for v in candidates]
        wanted = self.app.results_run or self.run_dir or (candidates[0].key if candidates else None)
        self.app.results_run = None
        if [o[1] for o in options] != getattr(self, "_options", None):
            self._options = [o[1] for o in options]
            with self.prevent(Select.Changed):
                select.set_options(options)
        if wanted in self._options and select.value != wanted:
            with self.prevent(Select.Changed):
                select.value = wanted
        self.load(wanted if wanted in self._options else None)

    @on(Select.Changed, "#result-run")
    def _run_changed(self, event):
        if event.value is not Select.BLANK:
            self.load(event.value)

    def load(self, run_dir, force=False):
        """(Re)read the run's files when they changed on disk."""
        paths = [os.path.join(run_dir, n) for n in ("results.csv", "report.md", "figure.png")] if run_dir else []
        stamp = (run_dir, tuple(os.path.getmtime(p) if os.path.exists(p) else None for p in paths))
        if stamp == self._loaded and not force:
            return
        self._loaded = stamp
        self.run_dir = run_dir
        view = self.app.view(run_dir) if run_dir else None
        verdict = self.query_one("#verdict", Label)
        if view is None:
            self.columns, self.rows = [], []
            verdict.update(Text("no run with results yet", "dim"))
            self._fill()
            self._show_report("")
            self.query_one("#figure-note", Static).update("")
            return
        self.columns, self.rows = runs_mod.read_table(os.path.join(run_dir, "results.csv"))
        verdict.update(Text.assemble("verdict: ", (view.verdict or "none yet", VERDICT_STYLE.get(view.verdict, "dim"))))
        self._fill()
        report = os.path.join(run_dir, "report.md")
        text = open(report, encoding="utf-8").read() if os.path.exists(report) else "*No report yet: it is written when the run finishes.*"
        self._show_report(text)
        self._show_figure(os.path.join(run_dir, "figure.png"))

    def _show_report(self, text):
        viewer = self.query_one("#report-md", ReportViewer)
        viewer._markdown = text     # read by the viewer's own mount, if it has not happened yet
        viewer.document.update(text)

    def _show_figure(self, path):
        pane = self.query_one("#figure-pane", VerticalScroll)
        for old in pane.query(".figure-image"):
            old.remove()
        note = self.query_one("#figure-note", Static)
        if not os.path.exists(path):
            note.update("no figure yet")
            return
        note.update(f"{path}  (o: open in the system viewer)")
        try:
            image_class = self.app.image_class()
            image = image_class(path, classes="figure-image")
            image.styles.width = "100%"
            image.styles.height = "auto"
            pane.mount(image)
        except Exception as e:  # an image the terminal cannot draw: the path and the key still work
            note.update(f"{path}  (cannot draw here: {e}; o opens it)")

    def _fill(self):
        table = self.query_one("#results-table", DataTable)
        table.clear(columns=True)
        for name in self.columns:
            table.add_column(name + (" ▼" if name == self.sort_col and self.sort_rev else
                                     " ▲" if name == self.sort_col else ""), key=name)
        rows = [r for r in self.rows if row_matches(self.columns, r, self.query_text)]
        if self.sort_col in self.columns:
            i = self.columns.index(self.sort_col)
            rows.sort(key=lambda r: sort_key(r[i]), reverse=self.sort_rev)
        self.shown = rows
        for n, row in enumerate(rows):
            table.add_row(*row, key=str(n))
        status = f"{len(rows)}/{len(self.rows)} rows" + (f" where {self.query_text!r}" if self.query_text else "")
        if self.sort_col:
            status += f" · sorted by {self.sort_col} {'▼' if self.sort_rev else '▲'}"
        status += " · click a header to sort, / filters, e exports"
        self.query_one("#table-status", Static).update(Text(status, "dim"))

    @on(DataTable.HeaderSelected, "#results-table")
    def _sort(self, event):
        name = str(event.column_key.value)
        self.sort_rev = not self.sort_rev if name == self.sort_col else False
        self.sort_col = name
        self._fill()

    def action_filter(self):
        self.query_one("#tabs", TabbedContent).active = "table"
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter(self, event):
        self.query_text = event.value
        self._fill()
        self.query_one("#results-table", DataTable).focus()

    def action_clear_filter(self):
        box = self.query_one("#filter", Input)
        box.value, self.query_text = "", ""
        box.remove_class("shown")
        self._fill()
        self.query_one("#results-table", DataTable).focus()

    def action_tab(self, tab):
        self.query_one("#tabs", TabbedContent).active = tab

    def action_export(self):
        if not self.columns:
            self.app.notify("no results to export", severity="warning")
            return
        view = self.app.view(self.run_dir)
        name = f"{view.recipe}-{view.name}-results.csv" if view else "results.csv"
        path = os.path.join(self.app.export_dir, name)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(self.shown)
        self.app.notify(f"exported {len(self.shown)} rows to {path}")
        self.app.last_export = path

    def action_open_figure(self):
        path = os.path.join(self.run_dir or "", "figure.png")
        if not self.run_dir or not os.path.exists(path):
            self.app.notify("this run has no figure yet", severity="warning")
            return
        self.app.open_file(path)


# ---------------------------------------------------------------- the app

class SpatialmixApp(App):
    TITLE = "spatialmix"
    COMMANDS = App.COMMANDS | {SpatialmixCommands}
    MODES = {"recipes": RecipesScreen, "runs": RunsScreen, "results": ResultsScreen}
    DEFAULT_MODE = "recipes"
    BINDINGS = [
        Binding("1", "switch_mode('recipes')", "Recipes"),
        Binding("2", "switch_mode('runs')", "Runs"),
        Binding("3", "switch_mode('results')", "Results"),
        Binding("question_mark", "help", "Help", priority=True),
        Binding("ctrl+s", "svg", "SVG"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, runs_dir="runs", data_dir=None, recipes=None, sampler=None, interval=1.0,
                 export_dir=None, screenshot_dir=None, image_class=None, backend=None):
        super().__init__()
        backend = backend or default_backend()
        self.backend = backend if backend in BACKENDS else BACKENDS[0]   # the controls' first choice
        self.runs_dir = os.path.abspath(runs_dir)
        self.data_dir = data_dir
        self.store = runs_mod.RunStore(self.runs_dir)
        self.catalogue = {}
        for rid in (recipes if recipes is not None else registry.list_recipes()):
            try:
                self.catalogue[rid] = registry.get_recipe(rid)
            except Exception as e:  # a recipe module being written, say: show it, do not die
                self.catalogue[rid] = e
        self.views = []
        self.verdicts = {}
        self.sampler = sampler or device_mod.DeviceSampler()
        self.device_sample = None
        self.interval = interval
        self.export_dir = os.path.abspath(export_dir or os.getcwd())
        self.screenshot_dir = os.path.abspath(screenshot_dir or os.getcwd())
        self._image_class = image_class
        self.focus_run = None
        self.results_run = None
        self.pending_recipe = None
        self.last_export = None
        self._scan_lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self.scans = 0

    # -- background work: never on the UI thread
    def on_mount(self):
        self.scan()
        self.sample_device()
        self.set_interval(self.interval, self.scan)
        self.set_interval(1.0, self.sample_device)

    @work(thread=True, group="scan", exit_on_error=False)
    def scan(self):
        if not self._scan_lock.acquire(blocking=False):
            return
        try:
            views = self.store.refresh()
            verdicts = {rid: runs_mod.latest_verdicts(self.runs_dir, rid) for rid in self.catalogue}
        finally:
            self._scan_lock.release()
        self.call_from_thread(self._apply_views, views, verdicts)

    def _apply_views(self, views, verdicts):
        self.views, self.verdicts = views, verdicts
        self.scans += 1
        screen = self.screen
        if hasattr(screen, "refresh_views"):
            screen.refresh_views()

    @work(thread=True, group="device", exit_on_error=False)
    def sample_device(self):
        if not self._sample_lock.acquire(blocking=False):
            return
        try:
            sample = self.sampler.sample()
        finally:
            self._sample_lock.release()
        self.call_from_thread(self._apply_sample, sample)

    def _apply_sample(self, sample):
        self.device_sample = sample
        for panel in self.screen.query(DevicePanel):
            panel.show(sample)

    # -- what screens ask of the app
    def view(self, key):
        return next((v for v in self.views if v.key == key), None)

    def start_run(self, recipe, scale, dataset, backend, seed):
        argv = runs_mod.run_argv(recipe, scale, self.runs_dir, dataset=dataset, backend=backend, seed=seed,
                                 data_dir=self.data_dir)
        run_dir = runs_mod.expected_run_dir(self.runs_dir, recipe, scale, dataset, seed)
        self.launch(argv, run_dir)

    def launch(self, argv, run_dir):
        view = self.view(run_dir) if run_dir else None
        # a launch of ours that has logged its run_end may still be exiting: that is no reason to wait
        running = [l for l in self.store.running_launches() if l.run_dir and l.run_dir == run_dir]
        if (view is not None and view.state in ("running", "starting")) or (view is None and running):
            self.notify(f"{run_dir} is already running", severity="warning")
            return None
        launch = self.store.start(argv, run_dir)
        self.notify("started: " + shlex.join(["spatialmix", *argv[argv.index("run"):]]))
        self.scan()
        self.show_run(run_dir or f"launch-{launch.process.pid}")
        return launch

    def show_recipe(self, rid):
        self.pending_recipe = rid
        if self.current_mode == "recipes":
            self.screen.on_screen_resume()
        else:
            self.switch_mode("recipes")

    def show_run(self, key):
        self.focus_run = key
        if self.current_mode == "runs":
            self.screen.refresh_views()
        else:
            self.switch_mode("runs")

    def show_results(self, key):
        self.results_run = key
        if self.current_mode == "results":
            self.screen.refresh_views()
        else:
            self.switch_mode("results")

    def image_class(self):
        if self._image_class is None:
            from textual_image.widget import Image

            self._image_class = Image
        return self._image_class

    def open_file(self, path):
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        try:
            subprocess.Popen([opener, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            self.notify(f"opening {path}")
        except OSError:
            self.notify(f"no system viewer ({opener} not found); the figure is {path}", severity="warning")

    # -- keys
    def action_help(self):
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_svg(self):
        path = self.save_screenshot(path=self.screenshot_dir)
        self.notify(f"screenshot: {path}")
        return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="spatialmix-tui", description="Terminal UI over spatialmix run "
                                     "folders: pick a recipe and start it, watch runs train, compare them, "
                                     "browse results. Keys: ? in the app.")
    parser.add_argument("--runs-dir", default="runs", help="where run folders are (default: ./runs)")
    parser.add_argument("--data-dir", help="TFDS data dir passed to the runs it starts (paper scale)")
    parser.add_argument("--serve", nargs="?", type=int, const=8000, metavar="PORT",
                        help="serve the app to a browser with textual-serve (default port 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address --serve binds (default: 127.0.0.1)")
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args)
    image_class = None
    if sys.__stdout__ is not None and sys.__stdout__.isatty():
        try:  # asks the terminal what it can draw: only before Textual owns the terminal
            from textual_image.widget import Image as image_class
        except Exception:
            image_class = None
    SpatialmixApp(runs_dir=args.runs_dir, data_dir=args.data_dir, image_class=image_class).run()
    return 0


def serve(args):
    from textual_serve.server import Server

    command = [sys.executable, "-m", "tui.app", "--runs-dir", os.path.abspath(args.runs_dir)]
    if args.data_dir:
        command += ["--data-dir", os.path.abspath(args.data_dir)]
    server = Server(shlex.join(command), host=args.host, port=args.serve, title="spatialmix-tui")
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
