"""The Recipes screen: the catalogue with each recipe's latest verdict per scale, its claim,
grid and budget, and the controls that start a run (scale, dataset, backend, seed)."""

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static

from recipes.core.choices import BACKENDS, SCALES
from tui.widgets import VERDICT_STYLE


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
