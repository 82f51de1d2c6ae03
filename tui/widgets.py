"""What the screens of spatialmix-tui share: the colours of runs, states and verdicts, the
short label of a cell, the results table's filter and sort, and the widgets that only render
state (`DevicePanel`, `ReportViewer`).
"""

from textual.widgets import MarkdownViewer, Static

from tui import device as device_mod

COLORS = ("#e06c75", "#61afef", "#98c379", "#e5c07b", "#c678dd", "#56b6c2", "#d19a66", "#abb2bf",
          "#ff79c6", "#8be9fd")
STATE_STYLE = {"running": "bold green", "starting": "green", "finished": "bold cyan", "failed": "bold red",
               "interrupted": "yellow", "no events": "dim"}
VERDICT_STYLE = {"holds": "bold green", "does not hold": "bold red", "inconclusive": "yellow"}


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
        # Textual calls the handler of every class in the MRO unless the default is prevented,
        # so the base's handler runs only through here, and never with None
        message.prevent_default()
        if message.table_of_contents is not None:
            super()._on_markdown_table_of_contents_updated(message)
        else:
            message.stop()
