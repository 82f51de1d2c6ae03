"""The Runs screen: every run folder (and every run this app started) with its state,
progress and verdict; loss and accuracy curves per cell, or of several marked runs
overlaid; cancel (SIGINT) and resume. A run whose cells are Ray tasks (`--executor ray`)
shows the node and GPUs of each cell: those training now in the `node · GPU` column and
the info line, every cell's beside its curve in the legend."""

import os

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plot import HiResMode, PlotWidget

from tui import runs as runs_mod
from tui.widgets import COLORS, STATE_STYLE, VERDICT_STYLE, DevicePanel, short_cell


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
                           ("backend", "backend"), ("node · GPU", "where")):
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
                                          "backend", "where"), self._cells(v)):
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
                Text(v.verdict or "", VERDICT_STYLE.get(v.verdict, "")), v.backend or "", v.where_text)

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
        if v.state == "running" and any(where for *_, where in v.training):   # Ray tasks, maybe several at once
            out.append("  training " + "; ".join(f"{short_cell(cell)} {epoch}/{epochs or '?'} on {where}"
                                                 for cell, epoch, epochs, where in v.training))
        elif v.state == "running" and v.current_cell:
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
        return [(short_cell(c.cell) + (f" @ {c.where}" if c.where else ""), COLORS[i % len(COLORS)], c)
                for i, c in enumerate(curves)]

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
