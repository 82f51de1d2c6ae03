"""spatialmix-tui: pick a recipe, start it, watch it train, compare runs, browse results.

A Textual front end over run folders. It reads what `spatialmix run` writes (run.json,
events.jsonl, results.csv, report.md, figure.png) and trains only by starting `spatialmix
run` as a subprocess in its own session, so a run outlives the TUI and a run started in
another terminal shows up here too. It never imports Keras and computes nothing about the
experiment: the verdict is the report's, the state is the event log's.

This module is the App (modes, background scans, starting runs), its command palette and
the entry points; the screens are tui/screens/ (one module each), what they share is
tui/widgets.py, and the run folders are read by tui/runs.py.

    spatialmix-tui [--runs-dir DIR] [--data-dir DIR] [--serve [PORT]] [--host ADDR] [--version]
"""

import argparse
import os
import shlex
import subprocess
import sys
import threading

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Provider

from recipes.core import registry
from recipes.core.choices import BACKENDS, default_backend
from tui import device as device_mod
from tui import runs as runs_mod
from tui.screens.help import HelpScreen
from tui.screens.recipes import RecipesScreen
from tui.screens.results import ResultsScreen
from tui.screens.runs import RunsScreen
from tui.widgets import DevicePanel
from zoo.errors import SpatialmixError, check


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


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, not argparse's usage block
        self.exit(2, f"spatialmix-tui: error: {message} (see `spatialmix-tui --help`)\n")


def package_version():
    """The installed spatialmix's version, from its package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spatialmix")
    except PackageNotFoundError:
        return "(not installed: run `pip install -e .` in the source tree)"


def port_number(text):
    """--serve's PORT: an integer from 1 to 65535 (argparse turns the ValueError into one line)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"PORT must be a port number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"PORT must be a port number from 1 to 65535, got {port}")
    return port


def check_args(args):
    """What a user can get wrong, refused in one line before the app takes the terminal. A runs
    dir that does not exist yet is fine: the first run started here creates it."""
    runs_dir = args.runs_dir
    check(not os.path.exists(runs_dir) or os.path.isdir(runs_dir),
          f"runs dir {runs_dir!r} is not a directory; pass --runs-dir DIR (where `spatialmix run` writes)")
    probe = os.path.abspath(runs_dir)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    check(os.path.isdir(probe), f"runs dir {runs_dir!r} cannot be created: {probe} is not a directory; "
                                "pass --runs-dir DIR")
    check(args.data_dir is None or os.path.isdir(args.data_dir),
          f"--data-dir {args.data_dir!r} is not a directory; pass the TFDS data dir that holds the prepared "
          "datasets (or leave it out)")
    if args.serve is not None:
        import socket

        try:
            family, kind, proto, _, address = socket.getaddrinfo(args.host, args.serve, type=socket.SOCK_STREAM)[0]
        except socket.gaierror as e:
            raise SpatialmixError(f"--host {args.host!r} is not an address of this machine ({e.strerror}); "
                                  "pass --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
        with socket.socket(family, kind, proto) as probe_socket:  # as the server will bind it
            probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe_socket.bind(address)
            except OSError as e:
                raise SpatialmixError(f"cannot serve on {args.host}:{args.serve} ({e.strerror}); choose another "
                                      "port with --serve PORT, or another --host") from None


def main(argv=None):
    parser = Parser(prog="spatialmix-tui", description="Terminal UI over spatialmix run "
                    "folders: pick a recipe and start it, watch runs train, compare them, "
                    "browse results. Keys: ? in the app.")
    parser.add_argument("--runs-dir", default="runs", help="where run folders are (default: ./runs)")
    parser.add_argument("--data-dir", help="TFDS data dir passed to the runs it starts (paper scale)")
    parser.add_argument("--serve", nargs="?", type=port_number, const=8000, metavar="PORT",
                        help="serve the app to a browser with textual-serve (default port 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address --serve binds (default: 127.0.0.1)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    args = parser.parse_args(argv)
    try:
        check_args(args)
        if args.serve is not None:
            return serve(args)
    except SpatialmixError as e:
        print(f"spatialmix-tui: error: {e}", file=sys.stderr)
        return 2
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
    try:
        server.serve()
    except OSError as e:  # the port was taken between the check and the bind
        raise SpatialmixError(f"cannot serve on {args.host}:{args.serve} ({e.strerror}); choose another port "
                              "with --serve PORT") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
