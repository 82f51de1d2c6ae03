"""What the bench measures: sizes, models, goals, and the (model, mode, kind) cases."""

from recipes.core.choices import BACKENDS, MODES  # noqa: F401

MODELS = ("convmixer", "sep_resnet")
VARIANTS = ("fast", "plain")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")   # recipes.core.runtime.PRECISIONS
SIZES = {
    "paper": {
        "batch": 64,
        "convmixer": {"width": 256, "depth": 8, "kernel_size": 5, "patch_size": 2, "num_classes": 10,
                      "input_shape": [32, 32, 3]},
        "sep_resnet": {"depth": 3, "width": 16, "depth_multiplier": 9, "kernel_size": 3, "num_classes": 10,
                       "input_shape": [32, 32, 3]},
        "steps": 2, "warmup": 2, "repeats": 3, "roof_n": 2048, "pipeline_batches": 300,
    },
    "tiny": {
        "batch": 8,
        "convmixer": {"width": 16, "depth": 2, "kernel_size": 3, "patch_size": 2, "num_classes": 10,
                      "input_shape": [16, 16, 3]},
        "sep_resnet": {"depth": 1, "width": 4, "depth_multiplier": 2, "kernel_size": 3, "num_classes": 10,
                       "input_shape": [16, 16, 3]},
        "steps": 1, "warmup": 1, "repeats": 1, "roof_n": 256, "pipeline_batches": 10,
    },
}
ZOO_NAMES = {"convmixer": "convmixer", "sep_resnet": "sep_resnet_cifar"}
PIPELINES = ("digits", "cifar_shaped", "cifar_shaped_augment")
GOAL_RATIO = 1.0        # default backend / peer, full and chans
GOAL_CHANS_FULL = 0.65  # chans / full step time, every backend
GOAL_JAX = 1.5          # JAX / peer
GOAL_PIPELINE = 10.0    # pipeline images/s / model images/s
WORKER_TIMEOUT = 900    # seconds for one request (a setup compiles every model)


def plan_cases(models, modes, peer):
    """Groups of interleaved measurements: (model, mode, kind) -> implementations."""
    groups = []
    for model in models:
        for mode in modes:
            groups.append((model, mode, "train"))
        groups.append((model, "full", "infer"))
    return groups


def case_id(model, mode, kind):
    return f"{model}/{mode}/{kind}"


def parse_list(text, default, what, allowed):
    if text is None:
        return list(default)
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        from zoo.errors import SpatialmixError

        raise SpatialmixError(f"unknown {what} {', '.join(bad)}; choose from: {', '.join(allowed)}")
    return items


def keras_impl(backend, variant, precision):
    """A Keras worker's name: 'torch', 'torch:plain', 'torch:mixed_bfloat16', 'torch:plain:mixed_float16'."""
    return ":".join([backend] + (["plain"] if variant == "plain" else []) + ([precision] if precision != "float32" else []))


def impl_precision(impl):
    """The precision in an implementation's name ('float32' if it names none)."""
    last = impl.rsplit(":", 1)[-1]
    return last if last in PRECISIONS else "float32"


def peer_impl(precision=None):
    """The peer's names: 'peer' (the reference: NCHW, float32), 'peer_cl' (channels-last) and
    'peer_cl:<precision>' (channels-last under torch.autocast in that precision's 16-bit type)."""
    return "peer" if precision is None else ("peer_cl" if precision == "float32" else f"peer_cl:{precision}")
