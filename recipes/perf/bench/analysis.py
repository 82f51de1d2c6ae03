"""From raw samples to medians, ratios (round by round) and the goals."""

import statistics

from recipes.perf.bench.config import (GOAL_CHANS_FULL, GOAL_JAX, GOAL_PIPELINE, GOAL_RATIO, case_id, impl_precision,
                                       peer_impl)


def summary(samples):
    if not samples:
        return None
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def analyse(result, size):
    roofs = [r["gflops"] for rs in result["roof"].values() for r in rs if r]
    roofs += [r["numpy_gflops"] for rs in result["roof"].values() for r in rs if r]
    result["roof_gflops"] = max(roofs) if roofs else None
    rows = {}
    for cid, per_impl in result["cases"].items():
        model, mode, kind = cid.split("/")
        for impl, entry in per_impl.items():
            # the reference peer; a mixed-precision row against the peer under autocast in its type
            reference = "peer"
            if (not impl.startswith("peer") and impl_precision(impl) != "float32"
                    and peer_impl(impl_precision(impl)) in per_impl):
                reference = peer_impl(impl_precision(impl))
            peer = per_impl.get(reference)
            s = summary(entry["samples"])
            if s is None:
                continue
            row = {"model": model, "mode": mode, "kind": kind, "impl": impl, "ms": {k: (v * 1000 if k != "n" else v)
                                                                                       for k, v in s.items()}}
            flops = entry["setup"]["flops"]
            row["flops"] = flops
            row["gflops_per_s"] = flops / s["median"] / 1e9
            if result["roof_gflops"]:
                row["fraction_of_roof"] = row["gflops_per_s"] / result["roof_gflops"]
            row["images_per_s"] = size["batch"] / s["median"]
            if peer is not None and impl != reference and peer["samples"]:
                ratios = [a / b for a, b in zip(entry["samples"], peer["samples"])]
                row["vs_peer"] = summary(ratios)
                row["peer"] = reference
            full = result["cases"].get(case_id(model, "full", kind), {}).get(impl)
            if kind == "train" and mode != "full" and full and full["samples"]:
                row["vs_full"] = summary([a / b for a, b in zip(entry["samples"], full["samples"])])
            rows[f"{cid}@{impl}"] = row
    result["summary"] = rows
    result["pipeline_summary"] = {name: summary(v) for name, v in result["pipeline"].items()}
    result["goals"] = goals(result)


def _row(result, model, mode, kind, impl):
    return result["summary"].get(f"{case_id(model, mode, kind)}@{impl}")


def goals(result):
    out = []
    default = result["default_backend"]
    for mode in ("full", "chans"):
        row = _row(result, "convmixer", mode, "train", default)
        ratio = row and row.get("vs_peer")
        out.append({"goal": f"default backend ({default}) ConvMixer {mode} step <= peer",
                    "value": ratio["median"] if ratio else None, "target": f"<= {GOAL_RATIO}",
                    "met": bool(ratio) and ratio["median"] <= GOAL_RATIO})
    impls = sorted({row["impl"] for row in result["summary"].values()})
    for impl in impls:
        row = _row(result, "convmixer", "chans", "train", impl)
        ratio = row and row.get("vs_full")
        out.append({"goal": f"ConvMixer chans/full on {impl}", "value": ratio["median"] if ratio else None,
                    "target": f"<= {GOAL_CHANS_FULL}", "met": bool(ratio) and ratio["median"] <= GOAL_CHANS_FULL})
    for mode in ("full", "chans"):
        row = _row(result, "convmixer", mode, "train", "jax")
        ratio = row and row.get("vs_peer")
        if row:
            out.append({"goal": f"JAX ConvMixer {mode} step within {GOAL_JAX}x of the peer",
                        "value": ratio["median"] if ratio else None, "target": f"<= {GOAL_JAX}",
                        "met": bool(ratio) and ratio["median"] <= GOAL_JAX})
    train_rows = [r for r in result["summary"].values() if r["kind"] == "train" and r["model"] == "convmixer"]
    cifar = result["pipeline_summary"].get("cifar_shaped_augment")
    if train_rows and cifar:
        fastest = max(r["images_per_s"] for r in train_rows)
        value = cifar["median"] / fastest
        out.append({"goal": "input pipeline (CIFAR-shaped, augmented) >= 10x the fastest ConvMixer training rate",
                    "value": value, "target": f">= {GOAL_PIPELINE}", "met": value >= GOAL_PIPELINE})
    return out


def any_flops(result, model, mode):
    per_impl = result["cases"].get(case_id(model, mode, "train"), {})
    return next((entry["setup"]["flops"] for entry in per_impl.values()), None)
