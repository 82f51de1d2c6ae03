"""The `spatialmix` command line: list, show, run, results, report, reproduce, models, bench.

Keras reads its backend once, at import, so nothing here imports Keras (or anything
that does) before `--backend` has been put into the environment.
"""

import argparse
import os
import signal
import sys

from recipes import commands
from recipes.console import ProgressPrinter, import_tensorflow_quietly
from recipes.core.choices import BACKENDS, DEFAULT_BACKEND, SCALES, default_backend

CPU_DRY_RUN_BATCH = 64   # a paper-scale dry run's batch at most, on a host without a GPU


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, not argparse's usage block
        self.exit(2, f"spatialmix: error: {message} (see `spatialmix {self._sub_name()}--help`)\n")

    def _sub_name(self):
        parts = self.prog.split()[1:]
        return " ".join(parts) + " " if parts else ""


def package_version():
    """The installed spatialmix's version, from its package metadata (what a bug report quotes)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spatialmix")
    except PackageNotFoundError:
        return "(not installed: run `pip install -e .` in the source tree)"


def build_parser():
    parser = Parser(prog="spatialmix", description="How much of a vision network's power comes from "
                    "learning spatial mixing? Run the experiments of two papers as recipes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.add_parser("list", help="the recipes, with titles")
    show = sub.add_parser("show", help="a recipe's grid and budget at each scale")
    show.add_argument("recipe")
    run = sub.add_parser("run", help="run (or resume) a recipe; writes one run folder")
    run.add_argument("recipe")
    run.add_argument("--scale", default="cpu", help=f"{' | '.join(SCALES)} (default: cpu)")
    run.add_argument("--dataset", help="override the scale's dataset (see `spatialmix show RECIPE`)")
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: ./runs)")
    run.add_argument("--seed", default="0", help="offset added to the scale's seeds (default: 0)")
    run.add_argument("--backend", help=f"{' | '.join(BACKENDS)} (default: $KERAS_BACKEND, else {DEFAULT_BACKEND}, "
                     "the fastest on CPU in `spatialmix bench`)")
    run.add_argument("--data-dir", help="TFDS data dir for paper-scale datasets (default: TFDS's own)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--distribute", action="store_true", help="data-parallel over every local device "
                     "(jax: keras.distribution.DataParallel; tensorflow: tf.distribute.MirroredStrategy); "
                     "under --executor ray, over the cell's own GPUs")
    run.add_argument("--executor", default="local", help="local (default: every cell in this process, one after "
                     "another) | ray (every cell a Ray task on a cluster; needs spatialmix[ray])")
    run.add_argument("--address", help="ray: the cluster to join, 'auto' or HOST:PORT of `ray start --head` "
                     "(default: start a one-machine cluster for this run, on loopback)")
    run.add_argument("--gpus-per-cell", help="ray: GPUs each cell gets (default 0; a fraction below 1 shares a GPU)")
    run.add_argument("--cpus-per-cell", help="ray: CPUs each cell gets (default 1)")
    run.add_argument("--max-retries", help="ray: times a cell is started again when its worker or node dies "
                     "(default 3); it resumes from its last epoch checkpoint")
    run.add_argument("--dry-run", action="store_true", help="run every cell cut to 1 epoch of 2 steps and 2 test "
                     "batches into a new temporary folder (never the runs dir), draw the figure and the report, "
                     "then print what the real run costs: cells × epochs × steps and an ETA from the measured "
                     "seconds per step")
    run.add_argument("--dry-run-batch", metavar="N", help="with --dry-run: take the 2 steps at batch N instead of "
                     "the run's, and say that the ETA is not the real run's (default: the run's batch; at paper "
                     f"scale on a host without a GPU, at most {CPU_DRY_RUN_BATCH}, as the paper's batches are "
                     "sized for a GPU's memory)")
    run.add_argument("--download", action="store_true", help="let TFDS download and prepare the dataset if it is "
                     "not prepared in --data-dir (off by default: runs read prepared data only)")
    commands.add_precision_argument(run)
    results = sub.add_parser("results", help="the results tables of finished and running runs, as text")
    results.add_argument("recipe", nargs="?")
    results.add_argument("--runs-dir", default="runs")
    sub.add_parser("models", help="the zoo's models and their default config")
    report = sub.add_parser("report", help="the reproduction table: one row per claim, from the run folders")
    report.add_argument("--runs-dir", default="runs", help="where run folders are (default: ./runs)")
    report.add_argument("--docs", metavar="DIR", help="also write DIR/reproduction.md and one results page per "
                        "paper (DIR/paper-a.md, DIR/paper-b.md, figures in DIR/figures)")
    reproduce = sub.add_parser("reproduce", help="run every recipe one at a time (resumable), then write the "
                               "reproduction table and the results pages")
    reproduce.add_argument("--scale", default="cpu", help=f"{' | '.join(SCALES)} (default: cpu)")
    reproduce.add_argument("--only", metavar="ID,ID", help="these recipes only, in this order (default: all)")
    reproduce.add_argument("--runs-dir", default="runs", help="where run folders go (default: ./runs)")
    reproduce.add_argument("--docs", default="docs", metavar="DIR",
                           help="where the table and the results pages go (default: ./docs)")
    reproduce.add_argument("--backend", help=f"{' | '.join(BACKENDS)} for every recipe (default: $KERAS_BACKEND, "
                           f"else {DEFAULT_BACKEND})")
    reproduce.add_argument("--quiet", action="store_true", help="no per-cell progress lines from the runs")
    bench = sub.add_parser("bench", help="time the training step against a plain PyTorch ConvMixer "
                           "(`spatialmix bench --help` for its options)", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    commands.add_parsers(sub)  # zoo (presets), tune
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the bench parses its own options (argparse's REMAINDER drops --help)
        argv = ["bench", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    if not args.command:
        build_parser().print_help()
        return 0
    backend = getattr(args, "backend", None)
    if backend is not None and backend not in BACKENDS:
        return _fail(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    elif args.command == "run":
        os.environ["KERAS_BACKEND"] = default_backend()  # $KERAS_BACKEND, else the fastest on CPU
    elif args.command == "tune":  # many small models: recipes.core.choices.SMALL_MODEL_BACKEND
        os.environ["KERAS_BACKEND"] = default_backend(small_models=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # SIGINT is how a run is cancelled (Ctrl-C, the TUI's `c`). A shell starts `cmd &` with SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: such a run could not be cancelled.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    from zoo.errors import SpatialmixError  # light: no Keras yet

    try:
        return COMMANDS[args.command](args, argv) or 0
    except SpatialmixError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("\nspatialmix: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _fail(message):
    print(f"spatialmix: error: {message}", file=sys.stderr)
    return 2


def cmd_list(args, argv):
    from recipes.core.registry import get_recipe, list_recipes

    for rid in list_recipes():
        recipe = get_recipe(rid)
        print(f"{rid:<22} {recipe.title}  [paper {recipe.paper}]")


def cmd_show(args, argv):
    from recipes.core.engine import expand_grid
    from recipes.core.registry import get_recipe

    recipe = get_recipe(args.recipe)
    print(f"{recipe.id}: {recipe.title}\npaper {recipe.paper}\nclaim: {recipe.claim}\nmetric: {recipe.metric}")
    for name, scale in recipe.scales.items():
        cells = expand_grid(scale)
        print(f"\n[{name}] dataset {scale.dataset}" + (f" (also: {', '.join(scale.datasets)})" if scale.datasets else ""))
        print(f"  grid   " + " × ".join(f"{k} {v}" for k, v in scale.grid.items()) + f" × seeds {list(scale.seeds)}"
              f" = {len(cells)} cells")
        print(f"  model  " + ", ".join(f"{k}={v}" for k, v in scale.model.items()))
        print(f"  budget " + ", ".join(f"{k} {v}" for k, v in scale.budget.items()))
        for dataset, over in scale.overrides.items():
            print(f"  on {dataset}: " + "; ".join(", ".join(f"{k}={v}" for k, v in part.items()) for part in over.values()))
    if recipe.thresholds:
        print("\nthresholds (fixed before any run; the verdict is frozen with them in verdict.json):")
        for line in recipe.thresholds.lines():
            print(f"  {line}")
    else:
        print("\nthresholds: none; the verdict rests on the seed spread alone (see the check's docstring)")
    if recipe.reference:
        print(f"\npaper-scale settings from: {recipe.reference}")


def cmd_run(args, argv):
    from recipes.core.engine import check_writable, resolve
    from recipes.core.registry import get_recipe
    from recipes.core.runtime import PRECISIONS
    from zoo.errors import SpatialmixError, check, check_choice

    try:
        seed = int(args.seed)
    except ValueError:
        raise SpatialmixError(f"--seed must be an integer >= 0, got {args.seed!r}") from None
    if seed < 0:
        raise SpatialmixError(f"--seed must be an integer >= 0, got {seed}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir) and not args.download:
        raise SpatialmixError(f"--data-dir {args.data_dir!r} is not a directory; pass the TFDS data dir that "
                              "holds the prepared datasets (or leave it out)")
    # everything a user can get wrong is checked before Keras/TensorFlow load (seconds)
    recipe = get_recipe(args.recipe)
    _, dataset = resolve(recipe, args.scale, args.dataset)
    check_choice("precision", args.precision, ("auto", *PRECISIONS))
    check(not (args.dry_run and args.distribute), "--dry-run times the steps on one device; drop --distribute")
    dry_batch = None
    if args.dry_run_batch is not None:
        check(args.dry_run, "--dry-run-batch goes with --dry-run; add --dry-run or drop it")
        check(args.dry_run_batch.isdigit() and int(args.dry_run_batch) > 0,
              f"--dry-run-batch must be a positive whole number, got {args.dry_run_batch!r}")
        dry_batch = int(args.dry_run_batch)
    if not args.dry_run:
        check_writable(args.runs_dir)
    if args.distribute:
        from recipes.core.runtime.distribute import check_backend

        check_backend(os.environ["KERAS_BACKEND"])
    from recipes.core.runtime.executors import make_executor

    executor = make_executor(args.executor, args.address, args.gpus_per_cell, args.cpus_per_cell, args.max_retries)
    import_tensorflow_quietly()
    from recipes.core import runtime

    if args.download:
        _download(dataset, args.data_dir)
    precision = runtime.set_precision(runtime.resolve_precision(args.precision, args.scale))
    dry_cap = None
    if args.dry_run and dry_batch is None and args.scale == "paper" and runtime.device_kind() == "cpu":
        dry_cap = CPU_DRY_RUN_BATCH   # a crash check here: the paper's batches are sized for a GPU's memory
    printer = None if args.quiet else ProgressPrinter()
    if args.dry_run:
        return _dry_run(recipe, args, seed, dataset, argv, printer, dry_batch, dry_cap)
    from recipes.core.engine import run_recipe

    _check_resume_precision(recipe, args, seed, dataset, precision)
    run_dir, finding = run_recipe(recipe, args.scale, args.dataset, args.runs_dir, seed, args.data_dir,
                                  argv=["spatialmix", *argv], progress=printer, distribute=args.distribute,
                                  executor=executor)
    print(f"\n{recipe.id}: the claim {finding.verdict} at {args.scale} scale. {finding.summary}")
    if finding.table:
        print(finding.table)
    print(f"run folder: {run_dir} (results.csv, verdict.json, report.md, figure.png)")


def _download(dataset, data_dir):
    """--download: TFDS downloads and prepares the run's dataset if it is not there yet."""
    from recipes.core import data
    from recipes.core.data import tfds as tfds_data

    if data.dataset_spec(dataset).source == "tfds":
        tfds_data.prepare(dataset, data_dir)


def _check_resume_precision(recipe, args, seed, dataset, precision):
    """A run folder trains under one precision: its checkpoints hold that optimizer's state."""
    from recipes.core import engine, runfolder
    from zoo.errors import check

    folder = runfolder.RunFolder(engine.run_dir_for(args.runs_dir, recipe, args.scale, dataset, seed))
    invocations = (folder.meta() or {}).get("invocations") or [{}]
    before = (invocations[-1].get("runtime") or {}).get("precision")
    check(before in (None, precision), f"run folder {folder.path} trains under --precision {before}, not "
                                       f"{precision}; rerun with --precision {before} to resume it, or pass another "
                                       "--runs-dir")


def _dry_run(recipe, args, seed, dataset, argv, printer, batch_size=None, batch_cap=None):
    from recipes.core import dryrun

    result = dryrun.dry_run(recipe, args.scale, dataset, args.data_dir, seed=seed, argv=["spatialmix", *argv],
                            progress=printer, batch_size=batch_size, batch_cap=batch_cap)
    print(f"\ndry run of {recipe.id} at {args.scale} scale finished: every cell ran (1 epoch of 2 steps each; its "
          f"verdict, {result.finding.verdict}, means nothing).")
    print(f"dry-run folder (delete it when done): {result.run_dir} (figure.png, report.md, results.csv)")
    print(dryrun.format_cost(result.cost))


def cmd_results(args, argv):
    from recipes.core import claims, runfolder
    from recipes.core.registry import get_recipe, list_recipes
    from recipes.core.reproduction import placement_text, training_text, verdict_text

    if args.recipe:
        get_recipe(args.recipe)
    runfolder.check_runs_dir(args.runs_dir)
    found = [(folder, meta) for folder in map(runfolder.RunFolder, runfolder.find_run_dirs(args.runs_dir))
             if (meta := folder.meta()) is not None and (not args.recipe or meta.get("recipe") == args.recipe)]
    if not found:
        print(f"no runs under {args.runs_dir}" + (f" for {args.recipe}" if args.recipe else ""))
        return 0
    for folder, meta in found:
        rows = folder.rows()
        if meta.get("recipe") not in list_recipes():  # a tune search or the preset build: no claim
            print(commands.other_run_summary(meta, rows, folder.path) + "\n")
            continue
        recipe = get_recipe(meta["recipe"])
        total = len(_grid_of(recipe, meta))
        print(f"== {meta['recipe']} · {meta['scale']} · {meta['dataset']} · {meta['backend']} · "
              f"{len(rows)}/{total} cells · {folder.path}")
        if rows:
            print(format_rows(rows, recipe))
            finding = claims.judge(recipe, meta["scale"], rows)
            print(f"claim: {verdict_text(recipe, folder, meta, rows)}. {finding.summary}")
        for label, text in (("training", training_text(folder, folder.status())), ("ran on", placement_text(folder))):
            if text:
                print(f"{label}: {text}")
        print()


def _grid_of(recipe, meta):
    from recipes.core.engine import expand_grid

    return expand_grid(recipe.scales[meta["scale"]], meta.get("seed", 0))


def format_rows(rows, recipe):
    import pandas as pd

    frame = pd.DataFrame(rows)
    grid_cols = [c for c in frame.columns if c not in ("cell", "dataset", "scale", "backend")
                 and not c.startswith("params_") and c not in ("test_loss", "epochs", "resumed_from_epoch")]
    keep = [c for c in grid_cols if c in frame.columns] + [c for c in ("params_trainable", "params_frozen") if c in frame]
    return frame[keep].to_string(index=False)


def cmd_models(args, argv):
    import_tensorflow_quietly()
    from zoo.registry import MODELS, model_defaults

    for name in sorted(MODELS):
        print(f"{name:<22} {MODELS[name].description}")
        defaults = model_defaults(name)
        print("    " + ", ".join(f"{k}={v}" for k, v in defaults.items()))
        print(f"    modes: {' | '.join(MODELS[name].modes)}")


def cmd_report(args, argv):
    from recipes.core.reproduction import check_docs_dir, reproduction_table, write_docs

    if args.docs:
        check_docs_dir(args.docs)
    print(reproduction_table(args.runs_dir))
    if args.docs:
        written = write_docs(args.runs_dir, args.docs)
        print(f"\nwritten: {', '.join(p for p in written if p.endswith('.md'))} (figures in "
              f"{os.path.join(args.docs, 'figures')})")


def cmd_reproduce(args, argv):
    from recipes.core.reproduce import parse_only, reproduce

    recipes = parse_only(args.only)  # every check before the first run starts
    return reproduce(recipes, args.scale, args.runs_dir, args.docs, backend=args.backend, quiet=args.quiet,
                     out=lambda line: print(line, flush=True))


def cmd_bench(args, argv):
    from recipes.perf.bench.cli import configure_parser  # its own options (it starts one worker per backend)
    from recipes.perf.bench.runner import run

    parser = Parser(prog="spatialmix bench", description="Time the zoo's training step on each backend "
                    "against a plain PyTorch ConvMixer.")
    configure_parser(parser)
    rest = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    return run(parser.parse_args(rest))


COMMANDS = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "results": cmd_results, "report": cmd_report,
            "reproduce": cmd_reproduce, "models": cmd_models, "bench": cmd_bench, **commands.COMMANDS}


if __name__ == "__main__":
    sys.exit(main())
