"""The bench's table, as printed."""

import statistics

from recipes.perf.bench.analysis import any_flops
from recipes.perf.bench.config import MODELS, MODES, SIZES


def _fmt_ratio(s):
    if not s:
        return "—"
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def format_table(result):
    lines = []
    m = result["machine"]
    lines.append(f"spatialmix bench — size {result['size']}, batch {result['config']['batch']}, "
                 f"{result.get('repeats_done', 0)} interleaved rounds × {result['steps_per_sample']} steps, "
                 f"warm-up {result['config']['warmup']}")
    lines.append(f"machine: {m['cpu']}, {m['cores']} cores; load avg before {result['load_before'][0]:.2f}, "
                 f"after {result['load_after'][0]:.2f}; wall {result['wall_s']:.0f} s")
    devices = sorted({f"{impl} on {info['settings'].get('device', 'cpu')}"
                      + (f" ({', '.join(info['settings']['gpus'])})" if info["settings"].get("gpus") else "")
                      for impl, info in result.get("implementations", {}).items()})
    if devices:
        lines.append("devices: " + "; ".join(devices))
    impl_width = max([17] + [len(r["impl"]) + 2 for r in result["summary"].values()])
    header = (f"{'model':<11}{'mode':<6}{'kind':<6}{'implementation':<{impl_width}}{'ms median':>10}{'  (min–max)':<18}"
              f"{'× peer':<19}{'/ full':<19}{'img/s':>8}{'GFLOP/s':>9}{'% roof':>7}")
    lines.append("")
    lines.append(header)
    lines.append("-" * len(header))
    order = {"peer": 0}
    rows = sorted(result["summary"].values(),
                  key=lambda r: (MODELS.index(r["model"]), r["kind"] != "train", MODES.index(r["mode"]),
                                 order.get(r["impl"], 1), r["impl"]))
    for r in rows:
        ms = r["ms"]
        roof = f"{100 * r['fraction_of_roof']:.1f}" if r.get("fraction_of_roof") is not None else "—"
        lines.append(f"{r['model']:<11}{r['mode']:<6}{r['kind']:<6}{r['impl']:<{impl_width}}{ms['median']:>10.1f}"
                     f"{'  (' + format(ms['min'], '.0f') + '–' + format(ms['max'], '.0f') + ')':<18}"
                     f"{_fmt_ratio(r.get('vs_peer')):<19}{_fmt_ratio(r.get('vs_full')):<19}"
                     f"{r['images_per_s']:>8.0f}{r['gflops_per_s']:>9.1f}{roof:>7}")
    lines.append("")
    if any(r.get("peer", "peer") != "peer" for r in rows):
        lines.append("× peer: against the reference peer (NCHW, float32); a mixed-precision row against the peer "
                     "in channels-last under torch.autocast of its type (peer_cl:<precision>)")
    if result.get("roof_gflops"):
        per = ", ".join(f"{impl} {statistics.median(r['gflops'] for r in rs if r):.0f}"
                        for impl, rs in result["roof"].items() if any(rs))
        lines.append(f"matmul roof (float32 {SIZES[result['size']]['roof_n']}²): {result['roof_gflops']:.0f} GFLOP/s "
                     f"(best of: {per}; NumPy in each worker)")
    if result["pipeline_summary"]:
        parts = [f"{name} {s['median']:,.0f} img/s" for name, s in result["pipeline_summary"].items() if s]
        lines.append("input pipeline (tf.data, recipes.data): " + "; ".join(parts))
        train = [r for r in rows if r["kind"] == "train"]
        cifar = result["pipeline_summary"].get("cifar_shaped_augment")
        if train and cifar:
            fastest = max(train, key=lambda r: r["images_per_s"])
            lines.append(f"the augmented CIFAR-shaped pipeline feeds {cifar['median']:,.0f} img/s: "
                         f"{cifar['median'] / fastest['images_per_s']:.1f}× the fastest training step "
                         f"({fastest['model']} {fastest['mode']} on {fastest['impl']}, "
                         f"{fastest['images_per_s']:,.0f} img/s)")
    for model in MODELS:
        flops = {mode: any_flops(result, model, mode) for mode in ("full", "chans")}
        if all(flops.values()):
            lines.append(f"{model}: counted FLOPs chans/full = {flops['chans'] / flops['full']:.2f} (training step: "
                         "freezing the spatial filters only removes their weight gradient)")
    lines.append("")
    lines.append(f"goals (default backend: {result['default_backend']}):")
    for g in result["goals"]:
        value = "—" if g["value"] is None else f"{g['value']:.2f}"
        lines.append(f"  [{'met' if g['met'] else 'NOT met'}] {g['goal']}: {value} (target {g['target']})")
    if result["errors"]:
        lines.append("")
        lines.append(f"{len(result['errors'])} error(s); see stderr / JSON")
    return "\n".join(lines)
