"""The key help of spatialmix-tui (`?`): every screen's keys, in one modal screen."""

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

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


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $accent; background: $surface; }
    """

    def compose(self):
        with VerticalScroll():
            yield Markdown(HELP)
