"""`spatialmix bench` options. Worker options are not here: workers have their own entry point."""

from __future__ import annotations

import argparse
import sys

from recipes.core.choices import BACKENDS, MODES
from recipes.perf.bench.config import MODELS, PRECISIONS, SIZES


def at_least(minimum, kind=int):
    """An argparse type: a number >= minimum (a bad value is argparse's one-line error)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number >= {minimum}, got {text!r}") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"must be a number >= {minimum}, got {text!r}")
        return value

    return parse


def configure_parser(parser: argparse.ArgumentParser):
    parser.add_argument("--size", choices=sorted(SIZES), default="paper",
                        help="paper: ConvMixer-256/8 (k5, p2) + sep. ResNet-20, batch 64 of 32×32×3 (default); "
                             "tiny: a seconds-long smoke")
    parser.add_argument("--backends", "--backend", dest="backends", default=None,
                        help=f"comma-separated Keras backends (default: every installed one of {', '.join(BACKENDS)})")
    parser.add_argument("--models", default=None, help=f"comma-separated: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--modes", default=None, help=f"comma-separated: {', '.join(MODES)} (default: all)")
    parser.add_argument("--variants", default="fast",
                        help="fast: with recipes.core.runtime's fast ops, as the training engine runs (default); "
                             "plain: stock Keras; both: fast,plain")
    parser.add_argument("--precision", default="float32",
                        help=f"comma-separated Keras dtype policies: {', '.join(PRECISIONS)} (default: float32). "
                             "A mixed one adds the peer in channels-last under torch.autocast of the same 16-bit "
                             "type (row peer_cl:<precision>), which that precision's rows are compared with")
    parser.add_argument("--repeats", type=at_least(1), default=None, help="interleaved rounds (default: 3; tiny: 1)")
    parser.add_argument("--steps", type=at_least(1), default=None, help="steps per sample (default: 2; tiny: 1)")
    parser.add_argument("--warmup", type=at_least(0), default=None, help="warm-up steps after the first call (default 2)")
    parser.add_argument("--budget", type=at_least(1, float), default=540.0,
                        help="seconds: skip rounds that would end later than this (default 540)")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain PyTorch peer")
    parser.add_argument("--peer-channels-last", action="store_true",
                        help="also time the peer in PyTorch's channels-last memory format (row peer_cl; "
                             "for information: float32 ratios stay against the reference NCHW peer)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline measurement")
    parser.add_argument("--json", default=None, metavar="PATH", help="write every raw number to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    nets = parser.add_argument_group("step times of the recipes' nets (recipes/perf/bench/nets.py)")
    nets.add_argument("--nets", metavar="SCALE", default=None,
                      help="cpu: time one training step of every net the cpu-scale recipes train, built as their "
                           "cells build it, on each backend, and write the table the budget rule reads "
                           "(recipes/core/steptimes.json); smoke: the same for the smoke scale (with --table)")
    nets.add_argument("--recipes", default=None, help="with --nets: comma-separated recipe ids (default: all; "
                                                      "the table keeps the other recipes' entries)")
    nets.add_argument("--quick", action="store_true", help="with --nets: 1 round of 1 step (a "
                                                          "correctness run; the table is marked provisional)")
    nets.add_argument("--table", default=None, metavar="PATH", help="with --nets: write the table here")
    nets.add_argument("--no-table", action="store_true", help="with --nets: print only, write no table")
    return parser


def main(argv=None):
    parser = configure_parser(argparse.ArgumentParser(prog="spatialmix bench", description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    from recipes.perf.bench.runner import run
    from zoo.errors import SpatialmixError  # light: zoo imports Keras lazily

    try:
        return run(args)
    except SpatialmixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
