"""The Results screen: a run's results table (sort by a column, filter, export to CSV), its
report (markdown) and its figure."""

import csv
import os

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Select, Static, TabbedContent, TabPane

from recipes.core.runfolder import RunFolder
from tui import runs as runs_mod
from tui.widgets import VERDICT_STYLE, ReportViewer, row_matches, sort_key


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
        candidates = [v for v in self.app.views if v.has_results or os.path.exists(RunFolder(v.run_dir).report_path)]
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
        folder = RunFolder(run_dir) if run_dir else None
        paths = [folder.results_path, folder.report_path, folder.figure_path] if folder else []
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
        self.columns, self.rows = runs_mod.read_table(folder.results_path)
        verdict.update(Text.assemble("verdict: ", (view.verdict or "none yet", VERDICT_STYLE.get(view.verdict, "dim"))))
        self._fill()
        report = folder.report_path
        text = open(report, encoding="utf-8").read() if os.path.exists(report) else "*No report yet: it is written when the run finishes.*"
        self._show_report(text)
        self._show_figure(folder.figure_path)

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
        name = f"{view.recipe}-{view.name}-results.csv" if view else "exported-results.csv"
        path = os.path.join(self.app.export_dir, name)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(self.shown)
        self.app.notify(f"exported {len(self.shown)} rows to {path}")
        self.app.last_export = path

    def action_open_figure(self):
        path = RunFolder(self.run_dir).figure_path if self.run_dir else None
        if not path or not os.path.exists(path):
            self.app.notify("this run has no figure yet", severity="warning")
            return
        self.app.open_file(path)
