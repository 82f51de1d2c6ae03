"""`spatialmix zoo ...` and `spatialmix tune ...`: parsers and thin handlers (the logic lives in
recipes.core.presets_build, recipes.core.tune and zoo.presets). Nothing here imports Keras
before the backend is in the environment."""

import json
import os
import shutil
import sys

from recipes.console import ProgressPrinter, import_tensorflow_quietly
from recipes.core.choices import BACKENDS, SMALL_MODEL_BACKEND, default_backend


def add_precision_argument(parser):
    """`--precision` of `run` and `tune` (validated by the command, before Keras loads)."""
    from recipes.core.runtime import PRECISIONS

    parser.add_argument("--precision", default="auto", help=f"auto | {' | '.join(PRECISIONS)}: Keras's dtype policy "
                        "(mixed: float32 weights, 16-bit compute, float32 logits; float16 with loss scaling). auto: "
                        "float32, except at paper scale on a GPU: mixed_bfloat16 (compute capability ≥ 8.0) or "
                        "mixed_float16 (7.x)")


def add_parsers(sub):
    zoo = sub.add_parser("zoo", help="pretrained zoo checkpoints: list, verify, build, export")
    zsub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", parser_class=sub._parser_class)
    zsub.add_parser("list", help="the registered presets with their metric, size and location")
    zsub.add_parser("verify", help="check every preset file's size and sha256 against the registry")
    build = zsub.add_parser("build", help="remake the shipped presets from scratch and update the registry")
    build.add_argument("--runs-dir", default="runs", help="where the build's run folder goes (default: ./runs)")
    build.add_argument("--only", nargs="+", metavar="NAME", help="remake only these presets")
    build.add_argument("--backend", help=f"{' | '.join(BACKENDS)} (default: {SMALL_MODEL_BACKEND}, the one the shipped "
                       "presets were made with)")
    build.add_argument("--quiet", action="store_true")
    export = zsub.add_parser("export", help="copy a trained cell's model.keras and print its preset record")
    export.add_argument("run_dir")
    export.add_argument("--cell", required=True, help="the cell id (the `cell` column of results.csv)")
    export.add_argument("--out", default=".", help="directory for the copy (default: .)")
    export.add_argument("--name", help="preset name (default: arch.tag from the model, mode and dataset)")

    tune = sub.add_parser("tune", help="KerasTuner search over a zoo family's width/depth/kernel in one mode")
    tune.add_argument("family", help="a zoo model, e.g. convmixer, sep_resnet_cifar")
    tune.add_argument("--mode", required=True, help="full | chans | space (fixed for the whole search)")
    tune.add_argument("--dataset", help="embedded classification set (default: the scale's)")
    tune.add_argument("--tuner", default="random", help="random | hyperband | bayesian (default: random)")
    tune.add_argument("--max-trials", default="4", help="number of trials (default: 4)")
    tune.add_argument("--scale", default="cpu", help="smoke | cpu (default: cpu)")
    tune.add_argument("--max-params", help="skip configurations with more parameters than this")
    tune.add_argument("--cap", default="total", help="what --max-params counts: total | trainable (default: total)")
    tune.add_argument("--epochs", help="epochs per trial (default: the scale's)")
    tune.add_argument("--runs-dir", default="runs", help="where run folders go (default: ./runs)")
    tune.add_argument("--backend", help=f"{' | '.join(BACKENDS)} (default: $KERAS_BACKEND, else {SMALL_MODEL_BACKEND})")
    tune.add_argument("--quiet", action="store_true")
    add_precision_argument(tune)


def cmd_zoo(args, argv):
    from zoo.errors import SpatialmixError

    action = args.zoo_command
    if action is None:
        raise SpatialmixError("`spatialmix zoo` needs an action: list, verify, build or export")
    if action == "list":
        from zoo import presets

        found = presets.records()
        print(f"{'preset':<44} {'metric':>16} {'params':>8} {'bytes':>8}  location")
        for name, r in sorted(found.items()):
            metric = f"{r['value']:.2f} dB" if r["metric"] == "test_psnr" else f"{100 * r['value']:.1f}% acc"
            print(f"{name:<44} {metric:>16} {r['params']:>8} {r['bytes']:>8}  {r.get('file') or r.get('url')}")
        return 0
    if action == "verify":
        from zoo import presets

        results = presets.verify()
        for name, ok, message in results:
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {message[4:] if ok and message.startswith('ok  ') else message}")
        bad = [name for name, ok, _ in results if not ok]
        if bad:
            raise SpatialmixError(f"{len(bad)} of {len(results)} preset files do not match the registry: "
                                  f"{', '.join(bad)}")
        print(f"{len(results)} presets verified")
        return 0
    if action == "export":
        if not os.path.isdir(args.run_dir):  # the mistakes that need no Keras, before it loads (seconds)
            raise SpatialmixError(f"run folder {args.run_dir} does not exist")
        _check_makeable(args.out, "--out")
        os.environ["KERAS_BACKEND"] = default_backend(small_models=True)
        import_tensorflow_quietly()
        from recipes.core.presets_build import export_cell

        name = args.name
        made = _make_dirs(args.out, "--out")
        tmp_name = name or ".export"
        try:
            record = export_cell(args.run_dir, args.cell, os.path.join(args.out, f"{tmp_name}.keras"), name=name)
        except SpatialmixError:
            if made:  # nothing half-written: the folders this command made go again
                shutil.rmtree(made, ignore_errors=True)
            raise
        if not name:  # the arch.tag name is known once the checkpoint is read
            from recipes.core.presets_build import preset_name

            name = preset_name(record["model"], record["config"], record["mode"], record["dataset"])
            final = os.path.join(args.out, f"{name}.keras")
            os.replace(os.path.join(args.out, f"{tmp_name}.keras"), final)
            record["file"] = os.path.basename(final)
        print(json.dumps({name: record}, indent=2))
        return 0
    # build
    from recipes.core import presets_build  # light: the preset list, no Keras yet

    for name in args.only or ():
        if name not in presets_build.SPECS_BY_NAME:
            raise SpatialmixError(f"unknown preset {name!r}; choose one of: {', '.join(presets_build.SPECS_BY_NAME)}")
    os.environ["KERAS_BACKEND"] = args.backend or SMALL_MODEL_BACKEND
    import_tensorflow_quietly()
    run_dir, made = presets_build.build(args.runs_dir, args.only, progress=None if args.quiet else ProgressPrinter(),
                                        argv=["spatialmix", *argv])
    print(f"\n{'preset':<44} {'metric':>10} {'params':>7} {'bytes':>7}  sha256        rebuild")
    for name, r, note in made:
        metric = f"{r['value']:.2f} dB" if r["metric"] == "test_psnr" else f"{100 * r['value']:.1f}%"
        print(f"{name:<44} {metric:>10} {r['params']:>7} {r['bytes']:>7}  {r['sha256'][:12]}  {note}")
    print(f"registry updated: zoo/checkpoints/presets.json; run folder: {run_dir}")
    return 0


def _check_makeable(path, flag):
    """A one-line error naming `flag` unless `path` is a directory or can be made one. Returns the
    top folder that os.makedirs(path) would create (None if `path` is there)."""
    from zoo.errors import SpatialmixError

    top, probe = None, os.path.abspath(path)
    while not os.path.exists(probe):
        top, probe = probe, os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise SpatialmixError(f"{flag} {path!r} cannot be a directory: {probe} is a file; pass {flag} DIR")
    return top


def _make_dirs(path, flag):
    """os.makedirs(path), or a one-line error naming `flag`. Returns the top folder it created
    (None if `path` was there), so a failed command can take it away again."""
    top = _check_makeable(path, flag)
    os.makedirs(path, exist_ok=True)
    return top


def cmd_tune(args, argv):
    from recipes.core.runtime import PRECISIONS
    from zoo.errors import SpatialmixError, check_choice

    check_choice("precision", args.precision, ("auto", *PRECISIONS))
    ints = {}
    for key in ("max_trials", "max_params", "epochs"):
        value = getattr(args, key)
        if value is None:
            ints[key] = None
            continue
        try:
            ints[key] = int(value)
        except ValueError:
            raise SpatialmixError(f"--{key.replace('_', '-')} must be an integer >= 1, got {value!r}") from None
        if ints[key] < 1:
            raise SpatialmixError(f"--{key.replace('_', '-')} must be an integer >= 1, got {value!r}")
    from recipes.core.runfolder import check_writable

    check_writable(args.runs_dir)
    import_tensorflow_quietly()  # the zoo's model list imports Keras: keep TF's start-up lines off stderr
    from recipes.core import tune

    tune.validate(args.family, args.mode, args.dataset, args.tuner, args.scale, ints["max_trials"],
                  ints["max_params"], args.cap)
    from recipes.core import runtime

    runtime.set_precision(runtime.resolve_precision(args.precision, args.scale))
    run_dir, best = tune.tune(args.family, args.mode, args.dataset, args.tuner, ints["max_trials"], args.scale,
                              ints["max_params"], args.cap, args.runs_dir, argv=["spatialmix", *argv],
                              progress=None if args.quiet else ProgressPrinter(), epochs=ints["epochs"])
    if best is None and "KERASTUNER_ORACLE_IP" not in os.environ:
        print(f"no trial finished; see {run_dir}/results.csv (status, message)", file=sys.stderr)
        return 1
    if best is None:
        print(f"worker {os.environ.get('KERASTUNER_TUNER_ID')} done; the chief reports the best configuration. "
              f"run folder: {run_dir}")
        return 0
    config = ", ".join(f"{k}={v}" for k, v in best["config"].items())
    print(f"\nbest configuration ({args.family}, mode {args.mode}): {config}")
    print(f"  trial {best['trial']}: validation accuracy {100 * best['val_accuracy']:.1f}%, test accuracy "
          f"{100 * best['test_accuracy']:.1f}%, {best['params_total']} parameters ({best['params_trainable']} trainable)")
    print(f"  best model: {best['model']}\nrun folder: {run_dir} (results.csv, events.jsonl, best.json)")
    return 0


def other_run_summary(meta, rows, run_dir):
    """`spatialmix results` for a run folder that is not a registered recipe's (a tune search,
    the preset build): its table, without a claim."""
    if meta.get("kind") == "tune":
        from recipes.core.tune import summary

        return summary(meta, rows) + f"\n{run_dir}"
    import pandas as pd

    head = f"== {meta.get('recipe')} · {meta.get('scale')} · {meta.get('dataset')} · {meta.get('backend')} · " \
           f"{len(rows)} cells · {run_dir}"
    if not rows:
        return head
    frame = pd.DataFrame(rows)
    keep = [c for c in frame.columns if c not in ("model_config", "dataset", "scale", "backend", "cell")
            and not c.startswith("params_") and c not in ("test_loss", "test_mse", "resumed_from_epoch")]
    return head + "\n" + frame[keep].to_string(index=False)


COMMANDS = {"zoo": cmd_zoo, "tune": cmd_tune}

if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `spatialmix` command")
