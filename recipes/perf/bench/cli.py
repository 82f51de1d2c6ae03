"""`spatialmix bench` options. Worker options are not here: workers have their own entry point."""

from __future__ import annotations

import argparse
import sys

from recipes.core.choices import BACKENDS, MODES
from recipes.perf.bench.config import MODELS, PRECISIONS, SIZES


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
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default: 3; tiny: 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per sample (default: 2; tiny: 1)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps after the first call (default 2)")
    parser.add_argument("--budget", type=float, default=540.0,
                        help="seconds: skip rounds that would end later than this (default 540)")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain PyTorch peer")
    parser.add_argument("--peer-channels-last", action="store_true",
                        help="also time the peer in PyTorch's channels-last memory format (row peer_cl; "
                             "for information: float32 ratios stay against the reference NCHW peer)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline measurement")
    parser.add_argument("--json", default=None, metavar="PATH", help="write every raw number to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
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
