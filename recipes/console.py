"""What the command line shows while it works: progress lines from a run's events
(`ProgressPrinter`) and TensorFlow imported without its start-up noise
(`import_tensorflow_quietly`). Shared by `spatialmix` and its subcommands; light to import
(no Keras, no TensorFlow until asked).
"""

import os
import sys
import time


def import_tensorflow_quietly():
    """Import TensorFlow (and let it probe for GPUs) with file descriptor 2 muted.

    TF 2.21 writes absl/oneDNN/CUDA start-up lines from C++ before it reads
    TF_CPP_MIN_LOG_LEVEL; they would bury the one-line errors and progress lines.
    Python exceptions still surface: they are raised after stderr is restored.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)  # TFDS warns through absl before raising
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class ProgressPrinter:
    """Turns events into progress lines: cells done/total, epoch, metrics, samples/s, ETA."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.cell_times = []
        self.cell_t0 = None
        self.started = {}         # cell -> when its cell_start came (cells train at once under Ray)
        self.remote = False       # cells run as Ray tasks: lines name their cell and where it runs
        self.total = self.todo = 0

    def __call__(self, e):
        kind = e["event"]
        if kind == "run_start":
            self.total, self.todo = e["cells_total"], e["cells_total"] - e["cells_done"]
            self._print(f"{e['recipe']} · {e['scale']} · {e['dataset']} · {e['backend']} · {e['cells_total']} cells"
                        f" ({e['cells_done']} already done) → {e['run_dir']}")
            if not self.todo:
                self._print("nothing to do: every cell has a results row")
        elif kind == "cell_start":
            self.cell_t0 = self.started[e["cell"]] = time.time()
            resumed = f" (resuming after epoch {e['resumed_from_epoch']})" if e["resumed_from_epoch"] else ""
            where = ""
            if e.get("host"):
                self.remote = True
                where = f" on {e['host']}" + (f" GPU {','.join(map(str, e['gpus']))}" if e.get("gpus") else "")
            self._print(f"[{e['index']}/{e['cells_total']}] {e['cell']}{resumed}{where}")
        elif kind == "epoch_end":
            self.cell_t0 = self.started.get(e["cell"], self.cell_t0 or time.time())
            m = e["metrics"]
            shown = "  ".join(f"{k} {_fmt(k, v)}" for k, v in m.items() if k in
                              ("loss", "accuracy", "val_accuracy", "val_loss", "psnr", "val_psnr"))
            rate = f"  {e['samples_per_s']:.0f} img/s" if e.get("samples_per_s") else ""
            elapsed = time.time() - self.cell_t0
            cell_eta = elapsed / e["epoch"] * (e["epochs"] - e["epoch"]) if e["epoch"] else 0
            per_cell = (sum(self.cell_times) / len(self.cell_times)) if self.cell_times else elapsed / e["epoch"] * e["epochs"]
            left = max(self.todo - len(self.cell_times) - 1, 0)
            who = f"{e['cell']} " if self.remote else ""
            self._print(f"    {who}epoch {e['epoch']}/{e['epochs']}  {shown}{rate}  ETA cell {_dur(cell_eta)}, run {_dur(cell_eta + left * per_cell)}")
        elif kind == "cell_end":
            self.cell_times.append(time.time() - self.started.pop(e["cell"], self.cell_t0 or time.time()))
            main = {k: v for k, v in e["metrics"].items() if k.startswith("test_") or k in ("psnr",)}
            who = f"{e['cell']} " if self.remote else ""
            self._print(f"    {who}done: " + "  ".join(f"{k} {_fmt(k, v)}" for k, v in main.items()) + f"  ({_dur(e['wall_s'])})")
        elif kind == "error":
            self._print(f"error in {e.get('cell') or 'run'}: {e['message']}")
        elif kind == "run_end" and e["status"] != "finished":
            self._print(f"run {e['status']}: {e['cells_done']}/{e['cells_total']} cells have results")

    def _print(self, text):
        print(text, file=self.stream, flush=True)


def _fmt(key, value):
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if "accuracy" in key else f"{value:.4g}"


def _dur(seconds):
    seconds = int(seconds or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"
