"""`spatialmix bench`, its plain PyTorch peer, and the runtime's fast ops (`recipes.core.runtime`).

- The fast ops keep numerics (marker `backends`, every backend): outputs, input and weight
  gradients and BN moving statistics of the optimised path equal the plain path's on the same
  weights, and the fast ops leave the saved model config untouched.
- The rest runs once, on the default backend: the peer has the zoo ConvMixer's parameter
  count and, given its weights, its outputs (atol 1e-4); the FLOP counts agree; and a tiny
  bench runs end to end (a correctness smoke: no timing assertions).
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from recipes.core.choices import BACKENDS, DEFAULT_BACKEND, MODES, default_backend
from recipes.core import runtime
from recipes.perf import flops
from recipes.perf.bench import config as bench_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

CASES = [
    ("convmixer", dict(width=16, depth=2, kernel_size=5, patch_size=2, input_shape=(16, 16, 3))),
    ("convmixer", dict(width=8, depth=1, kernel_size=4, patch_size=1, input_shape=(9, 9, 3))),  # even k, odd size
    ("sep_resnet_cifar", dict(depth=1, width=4, depth_multiplier=2, kernel_size=3, input_shape=(8, 8, 3))),
]


# --------------------------------------------------------------------------- fast ops == plain ops


def _train_call(model, x):
    """Training-mode outputs, gradients of sum(outputs · r) w.r.t. every trainable variable
    and the input, then the moving statistics and the inference output."""
    backend = keras.backend.backend()
    r = np.random.default_rng(1).random((x.shape[0], model.output.shape[-1])).astype("float32")
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = model(xt, training=True)
            loss = tf.reduce_sum(out * r)
        grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables + [xt])]
    elif backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        out = model(xt, training=True)
        (out * torch.tensor(r)).sum().backward()
        grads = [v.value.grad.detach().numpy().copy() for v in model.trainable_variables] + [xt.grad.numpy()]
        for v in model.trainable_variables:
            v.value.grad = None
        out = out.detach()
    else:
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def f(tv, xx):
            out, new_frozen = model.stateless_call(tv, frozen, xx, training=True)
            return (out * r).sum(), (out, new_frozen)

        grad_fn = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))  # traced now: with the ops in place now
        (_, (out, new_frozen)), (gt, gx) = grad_fn(trainable, x)
        grads = [np.asarray(g) for g in gt] + [np.asarray(gx)]
        for v, value in zip(model.non_trainable_variables, new_frozen):
            v.assign(value)
        infer_fn = jax.jit(lambda tv, ntv, xx: model.stateless_call(tv, ntv, xx, training=False)[0])
        infer = np.asarray(infer_fn(trainable, [v.value for v in model.non_trainable_variables], x))
        stats = [np.asarray(v) for v in new_frozen]
        return [np.asarray(out)] + grads + stats + [infer]
    stats = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    infer = keras.ops.convert_to_numpy(model(x, training=False))
    return [keras.ops.convert_to_numpy(out)] + grads + stats + [infer]


def _reference_kernels():
    """Where Keras's own ops are the reference: on torch, PyTorch's native kernels, not oneDNN.
    Keras's torch conv hands a strided 1×1 conv on channels-last input to oneDNN, whose weight
    gradient is wrong, by a different amount on each call, when the layer has fewer input
    channels than the CPU's vector block (8 on AVX2, 16 on AVX-512; uxlfoundation/oneDNN#6035):
    the separable ResNet's width-4 shortcut here."""
    import contextlib

    if keras.backend.backend() == "torch":
        import torch

        return torch.backends.mkldnn.flags(enabled=False)
    return contextlib.nullcontext()


@pytest.mark.backends
@pytest.mark.parametrize("channels", [4, 16])
def test_strided_1x1_conv_gradients_are_exact_with_the_fast_ops(channels):
    """A stride-2 1×1 conv (a ResNet shortcut) trains on its true gradients: the fast ops' output,
    kernel and input gradients equal the float64 sums. 4 input channels is below oneDNN's vector
    block, where its own strided 1×1 weight gradient is wrong on channels-last input (see
    _reference_kernels); 16 is above it."""
    inputs = keras.Input((8, 8, channels))
    conv = keras.layers.Conv2D(8, 1, strides=2, use_bias=False, padding="same")
    model = keras.Model(inputs, keras.layers.Flatten()(conv(inputs)))
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, channels)).astype("float32")
    kernel = rng.standard_normal((1, 1, channels, 8)).astype("float32")
    conv.kernel.assign(kernel)
    r = np.random.default_rng(1).random((4, 4 * 4 * 8)).reshape(4, 4, 4, 8)   # _train_call's weights on the output
    seen = x[:, ::2, ::2, :].astype("float64")
    want_out = np.einsum("nhwc,co->nhwo", seen, kernel[0, 0].astype("float64"))
    want_kernel = np.einsum("nhwc,nhwo->co", seen, r)
    want_x = np.zeros(x.shape)
    want_x[:, ::2, ::2, :] = np.einsum("nhwo,co->nhwc", r, kernel[0, 0].astype("float64"))
    try:
        runtime.apply_fast_ops()
        for _ in range(3):   # the wrong gradient differed from call to call
            out, grad_kernel, grad_x = _train_call(model, x)[:3]
            np.testing.assert_allclose(out.reshape(want_out.shape), want_out, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(grad_kernel[0, 0], want_kernel, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(grad_x, want_x, rtol=1e-4, atol=1e-5)
    finally:
        runtime.remove_fast_ops()


@pytest.mark.backends
@pytest.mark.parametrize("mode", ["full", "chans"])
@pytest.mark.parametrize("name,config", CASES, ids=["convmixer", "convmixer_even_k", "sep_resnet"])
def test_fast_ops_match_plain_ops(name, config, mode):
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, num_classes=5, mode=mode, **config)
    weights = model.get_weights()
    x = np.random.default_rng(0).random((4, *config["input_shape"])).astype("float32")
    runtime.remove_fast_ops()
    with _reference_kernels():
        plain = _train_call(model, x)
    model.set_weights(weights)
    try:
        active = runtime.apply_fast_ops()
        fast = _train_call(model, x)
    finally:
        runtime.remove_fast_ops()
    assert active, "no fast op for this backend"
    assert len(plain) == len(fast)
    for index, (a, b) in enumerate(zip(plain, fast)):
        scale = max(float(np.max(np.abs(a))), 1e-6)
        error = float(np.max(np.abs(a - b))) / scale
        assert error < 1e-3, f"array {index} of {len(plain)} differs by {error:.2e} (relative to its max)"


@pytest.mark.backends
def test_fast_ops_leave_models_and_keras_untouched(tmp_path):
    import keras.src.backend as kbackend

    before = {name: getattr(kbackend.nn, name) for name in ("conv", "depthwise_conv", "gelu")}
    bn_call = keras.layers.BatchNormalization.call
    config = dict(width=8, depth=1, kernel_size=3, patch_size=2, num_classes=3, input_shape=(8, 8, 3))
    plain_json = zoo.create_model("convmixer", **config).to_json()
    try:
        runtime.apply_fast_ops()
        model = zoo.create_model("convmixer", **config)
        assert model.to_json() == plain_json  # same layers, same config: same checkpoint format
        path = str(tmp_path / "m.keras")
        model.save(path)
        with runtime.plain_ops():
            assert keras.layers.BatchNormalization.call is bn_call
            loaded = keras.models.load_model(path, safe_mode=True)
        assert loaded.to_json() == plain_json
        assert runtime.fast_ops_active()
    finally:
        runtime.remove_fast_ops()
    assert not runtime.fast_ops_active()
    assert keras.layers.BatchNormalization.call is bn_call
    assert {name: getattr(kbackend.nn, name) for name in before} == before


# --------------------------------------------------------------------------- the peer


@needs_torch
@pytest.mark.parametrize("mode", ["full", "chans", "space"])
def test_peer_has_the_zoo_convmixers_parameters_and_outputs(mode):
    import torch

    from recipes.perf import torch_peer

    keras.utils.set_random_seed(0)
    model = zoo.create_model("convmixer", width=16, depth=2, kernel_size=5, patch_size=2, num_classes=10,
                             input_shape=(16, 16, 3), mode=mode)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BN parameters and statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            for w in layer.weights:
                w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    net = torch_peer.convmixer(16, 2, 5, 2, 10)
    torch_peer.set_mode(net, mode)
    counts = zoo.count_params(model)
    assert torch_peer.count_params(net) == sum(counts.values())
    assert torch_peer.count_params(net, trainable_only=True) == sum(
        v for k, v in counts.items() if k.endswith("_trainable"))
    torch_peer.copy_weights_from_keras(model, net)
    x = rng.random((4, 16, 16, 3)).astype("float32")
    net.eval()
    with torch.no_grad():
        peer_infer = net(torch_peer.from_nhwc(x)).numpy()
    np.testing.assert_allclose(peer_infer, keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-4)
    net.train()
    with torch.no_grad():
        peer_train = net(torch_peer.from_nhwc(x)).numpy()  # batch statistics
    np.testing.assert_allclose(peer_train, keras.ops.convert_to_numpy(model(x, training=True)), atol=1e-4)


@needs_torch
def test_flop_counts_agree_with_the_formula_and_the_peer():
    import torch

    from recipes.perf import torch_peer

    w, depth, k, p, n, batch = 32, 2, 5, 2, 10, 3
    model = zoo.create_model("convmixer", width=w, depth=depth, kernel_size=k, patch_size=p, num_classes=n,
                             input_shape=(16, 16, 3), mode="chans")
    net = torch_peer.set_mode(torch_peer.convmixer(w, depth, k, p, n), "chans")
    keras_layers = flops.keras_layer_flops(model, batch)
    peer_layers = flops.torch_layer_flops(net, torch.zeros(batch, 3, 16, 16))
    assert keras_layers == peer_layers
    pixels = batch * 8 * 8
    stem, spatial, channel, head = 2 * pixels * w * p * p * 3, 2 * pixels * w * k * k, 2 * pixels * w * w, 2 * batch * w * n
    forward, train = flops.train_flops(keras_layers)
    assert forward == stem + depth * (spatial + channel) + head
    # chans: stem and depthwise frozen (no weight gradient); no input gradient for the stem
    assert train == forward + depth * (spatial + 2 * channel) + 2 * head


# --------------------------------------------------------------------------- the bench, end to end


def test_speed_api():
    assert default_backend() == (os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
    assert isinstance(runtime.compile_kwargs(), dict)
    assert DEFAULT_BACKEND in BACKENDS


def test_bench_analysis_turns_samples_into_medians_and_round_by_round_ratios():
    """The analysis step on hand-made samples (the end-to-end bench is in the slow tier)."""
    from recipes.perf.bench.analysis import analyse

    def entry(samples):
        return {"samples": samples, "setup": {"flops": 2e9}}

    result = {"roof": {}, "pipeline": {}, "default_backend": "torch", "cases": {
        "convmixer/full/train": {"torch": entry([0.10, 0.20, 0.12]), "peer": entry([0.20, 0.20, 0.20])},
        "convmixer/chans/train": {"torch": entry([0.05, 0.08, 0.09]), "peer": entry([0.10, 0.10, 0.10])}}}
    analyse(result, {"batch": 64})
    full, chans = result["summary"]["convmixer/full/train@torch"], result["summary"]["convmixer/chans/train@torch"]
    assert full["ms"]["median"] == pytest.approx(120.0) and full["ms"]["n"] == 3
    assert full["images_per_s"] == pytest.approx(64 / 0.12) and full["gflops_per_s"] == pytest.approx(2 / 0.12)
    assert full["vs_peer"]["median"] == pytest.approx(0.6)                # 0.5, 1.0, 0.6 round by round
    assert chans["vs_full"]["median"] == pytest.approx(0.5)                # 0.5, 0.4, 0.75
    assert "vs_full" not in full
    met = {g["goal"]: g["met"] for g in result["goals"]}
    assert met["default backend (torch) ConvMixer full step <= peer"] is True


def test_bench_sets_mixed_precision_rows_against_the_autocast_peer():
    """A mixed-precision Keras row is compared with the peer under torch.autocast in the same
    type (channels-last); float32 rows and the peer's own variants with the reference peer."""
    from recipes.perf.bench.analysis import analyse

    def entry(samples):
        return {"samples": samples, "setup": {"flops": 2e9}}

    impl = bench_config.keras_impl("torch", "fast", "mixed_bfloat16")
    assert impl == "torch:mixed_bfloat16" and bench_config.impl_precision(impl) == "mixed_bfloat16"
    assert bench_config.keras_impl("jax", "plain", "float32") == "jax:plain"
    autocast_peer = bench_config.peer_impl("mixed_bfloat16")
    result = {"roof": {}, "pipeline": {}, "default_backend": "torch", "cases": {"convmixer/full/train": {
        "torch": entry([0.10, 0.12]), impl: entry([0.05, 0.06]), "peer": entry([0.20, 0.20]),
        "peer_cl": entry([0.16, 0.16]), autocast_peer: entry([0.10, 0.10])}}}
    analyse(result, {"batch": 64})
    rows = result["summary"]
    assert rows[f"convmixer/full/train@{impl}"]["peer"] == autocast_peer
    assert rows[f"convmixer/full/train@{impl}"]["vs_peer"]["median"] == pytest.approx(0.55)
    assert rows["convmixer/full/train@torch"]["peer"] == "peer"
    assert rows["convmixer/full/train@torch"]["vs_peer"]["median"] == pytest.approx(0.55)
    assert rows[f"convmixer/full/train@{autocast_peer}"]["vs_peer"]["median"] == pytest.approx(0.5)
    assert "vs_peer" not in rows["convmixer/full/train@peer"]
    assert rows[f"convmixer/full/train@{impl}"]["images_per_s"] == pytest.approx(64 / 0.055)


@needs_torch
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_peer_trains_under_autocast(precision):
    """The peer's mixed-precision step (torch.autocast; float16 with a GradScaler) updates the
    weights and keeps them float32."""
    import torch

    from recipes.perf import torch_peer

    torch.manual_seed(0)
    net = torch_peer.convmixer(width=8, depth=1, kernel_size=3, patch_size=2, num_classes=3)
    before = [p.detach().clone() for p in net.parameters()]
    step = torch_peer.make_train_step(net, torch_peer.make_optimizer(net, lr=1e-2),
                                      autocast=torch_peer.AUTOCAST[precision])
    x = torch_peer.from_nhwc(np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32))
    y = torch.tensor([0, 1, 2, 0])
    losses = [float(step(x, y)) for _ in range(3)]
    assert all(np.isfinite(losses))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.slow
def test_gpu_check_script_in_cpu_mode(tmp_path):
    """scripts/gpu-check.sh --cpu: every step of the GPU check, on the CPU, into one JSON file."""
    from recipes.core.choices import installed_backends

    out = tmp_path / "gpu-check.json"
    env = {**os.environ, "PYTHON": sys.executable, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu-check.sh"), "--cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    backends = installed_backends()
    assert result["mode"] == "cpu" and result["nvidia_smi_error"] == "not run (--cpu)" and not result["errors"]
    assert result["backends"] == backends
    for backend in backends:
        train = result["train"][backend]
        assert train["model"] == {"name": "convmixer", "width": 128, "depth": 16, "kernel_size": 8, "patch_size": 1}
        assert train["images_per_s"] > 0 and train["median_step_s"] > 0 and np.isfinite(train["loss"])
        assert train["logits_dtype"] == "float32" and train["runtime"]["device"] == "cpu"
    bench = result["bench"]
    impls = set(bench["implementations"])
    expected = {*backends, *(f"{b}:mixed_bfloat16" for b in backends)}
    if HAS_TORCH:
        expected |= {"peer", "peer_cl", "peer_cl:mixed_bfloat16"}
    assert impls == expected and not bench["errors"]
    for row in bench["summary"].values():
        assert row["images_per_s"] > 0
        if (row["impl"].endswith(":mixed_bfloat16") and not row["impl"].startswith("peer")
                and row["model"] == "convmixer" and HAS_TORCH):
            assert row["peer"] == "peer_cl:mixed_bfloat16"
    assert bench["implementations"]["peer_cl:mixed_bfloat16"]["settings"]["precision"] == "mixed_bfloat16"


@pytest.mark.slow
def test_bench_tiny_smoke(tmp_path):
    backend = keras.backend.backend()
    out = tmp_path / "bench.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "recipes.perf.bench", "--size", "tiny", "--repeats", "1",
                           "--backends", backend, "--json", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "× peer" in proc.stdout and "goals" in proc.stdout
    result = json.loads(out.read_text())
    assert not result["errors"]
    impls = [backend] + (["peer"] if HAS_TORCH else [])
    expected = {f"{model}/{mode}/train" for model in bench_config.MODELS for mode in MODES}
    expected |= {f"{model}/full/infer" for model in bench_config.MODELS}
    assert set(result["cases"]) == expected
    for cid, per_impl in result["cases"].items():
        wanted = [i for i in impls if i != "peer" or cid.startswith("convmixer")]
        assert sorted(per_impl) == sorted(wanted), cid
        for impl, entry in per_impl.items():
            assert len(entry["samples"]) == 1 and entry["samples"][0] > 0, (cid, impl)
            assert entry["setup"]["flops"] > 0
    for row in result["summary"].values():
        assert row["gflops_per_s"] > 0 and row["images_per_s"] > 0
        if HAS_TORCH and row["model"] == "convmixer" and row["impl"] != "peer":
            assert row["vs_peer"]["median"] > 0
    assert result["roof_gflops"] > 0
    assert all(result["pipeline"][name][0] > 0 for name in bench_config.PIPELINES)
    assert result["goals"]


# --------------------------------------------------------------------------- --nets: the recipes' nets


def _hand_setup(nets_info):
    cells = {"k=0": {"net": "net.a", "seeds": 2, "steps_per_epoch": 10, "eval_batches_per_epoch": 0,
                     "test_batches": 2, "loop": "fit"},
             "k=5": {"net": "net.b", "seeds": 2, "steps_per_epoch": 10, "eval_batches_per_epoch": 0,
                     "test_batches": 2, "loop": "fit"}}
    return {"recipes": {"rec": {"textures": {"cells": cells, "epochs": 3,
                                             "rule": {"max_epochs": 8, "min_epochs": 1, "extra_steps": 0.0,
                                                      "extra_s": 0.0}}}},
            "nets": nets_info, "versions": {}, "settings": {}}


def _info(model):
    return {"model": model, "params": 1000, "trainable_params": 900, "input_shape": [32, 32, 1], "batch": 64,
            "optimizer": "SGD", "weight_decay": 5e-4, "loss": "SparseCategoricalCrossentropy",
            "first_used_by": f"rec (textures) k={model}", "build_s": 1.0, "first_step_s": 2.0, "first_eval_s": 0.5,
            "eval_ms": 40.0, "eval_batch": 256, "save_s": 0.1}


def _measured(load_before=0.3, load_after=0.4, steal=0.0):
    from recipes.perf.bench import nets

    before = {"load": [load_before, 0.2, 0.1], "steal_pct": steal, "busy_pct": 3.0}
    after = {"load": [load_after, 0.5, 0.2], "steal_pct": steal, "busy_pct": 4.0}
    problems = nets.quiet_problems(before, after, steal)
    return {"date": "2026-12-02T08:00:00+0000", "host": "h", "cpu": "c", "cores": 2, "before": before, "after": after,
            "steal_during_pct": steal, "quiet": not problems, "problems": problems, "quick": False, "repeats": 3,
            "steps": 3, "warmup": 1, "wall_s": 100.0}


def test_nets_table_and_report_from_hand_made_samples():
    """The table the budget rule reads, built from hand-made set-ups and samples (no timing)."""
    from recipes.core import budget
    from recipes.perf.bench import nets

    setups = {"torch": _hand_setup({"net.a": _info("a"), "net.b": _info("b")}),
              "jax": _hand_setup({"net.a": _info("a"), "net.b": _info("b")})}
    samples = {"torch": {"net.a": [0.30, 0.10, 0.12], "net.b": [0.05, 0.06, 0.04]},
               "jax": {"net.a": [0.02, 0.03, 0.025], "net.b": [0.01, 0.01, 0.01]}}
    table = nets.build_table("cpu", _measured(), setups, samples)
    a = table["nets"]["net.a"]
    assert a["backends"]["torch"] == {"step_ms": 120.0, "step_ms_min": 100.0, "step_ms_max": 300.0, "samples": 3,
                                      "build_s": 1.0, "first_step_s": 2.0, "first_eval_s": 0.5, "eval_ms": 40.0,
                                      "eval_batch": 256, "save_s": 0.1}
    assert a["params"] == 1000 and "build_s" not in a  # times per backend, the net's description once
    assert table["recipes"]["rec"]["textures"]["cells"]["k=5"]["net"] == "net.b"
    # the rule on this table: 4 cells (2 seeds each) at torch's medians
    source = budget.StepTable(table)
    fixed = 4 * (1.0 + 2.0 + 0.5 + 2 * 0.04 + 0.1)
    per_epoch = 2 * (10 * 0.12 + 0.1) + 2 * (10 * 0.05 + 0.1)
    epochs = budget.rule_epochs("rec", "textures", 8, source=source)
    assert epochs == min(8, int((budget.SHARE_S - fixed) // per_epoch)) == 8
    estimates = nets.recipe_estimates(table, ["torch", "jax"])
    (recipe, dataset, cells, rule_epochs, now, seconds), = estimates
    assert (recipe, dataset, cells, rule_epochs, now) == ("rec", "textures", 4, 8, 3)
    assert seconds["torch"] == pytest.approx(fixed + 8 * per_epoch)
    text = nets.format_report(table, ["torch", "jax"], estimates)
    assert "the host was quiet" in text and "WARNING" not in text
    assert "net.a" in text and "120.0 (100-300)" in text and "rec (textures)" in text
    assert "jax" in text and "x faster" in text   # jax's far smaller steps: worth saying, per recipe

    # a busy host: said plainly, and the table says so too
    busy = nets.build_table("cpu", _measured(load_before=3.2, steal=7.5), setups, samples)
    assert not busy["measured"]["quiet"] and budget.StepTable(busy).provisional
    assert table["note"].startswith("measured on a quiet host") and busy["note"].startswith("PROVISIONAL (load 3.20")
    text = nets.format_report(busy, ["torch"], nets.recipe_estimates(busy, ["torch"]))
    assert "WARNING: the host was not quiet" in text and "load 3.20 before" in text and "steal 7.5 %" in text


def test_quiet_means_low_load_and_no_steal_before_and_after():
    from recipes.perf.bench.nets import quiet_problems

    calm = {"load": [0.5, 0.5, 0.5], "steal_pct": 0.1}
    assert quiet_problems(calm, calm, 0.2) == []
    assert quiet_problems(calm, {"load": [1.6, 1, 1], "steal_pct": 0.0}) == ["load 1.60 after (> 1.5)"]
    assert quiet_problems({"load": [0.1, 0, 0], "steal_pct": 6.0}, calm) == ["CPU steal 6.0 % before (> 5 %)"]
    assert quiet_problems(calm, calm, 5.5) == ["CPU steal 5.5 % during the bench (> 5 %)"]
    # another job on a core while the bench is idle shows in the busy share, whatever the load says
    assert quiet_problems(calm, {**calm, "busy_pct": 60.0}) == ["CPU busy 60 % after, with the bench idle (> 50 %)"]
    assert quiet_problems({**calm, "busy_pct": 12.0}, calm) == []


def test_the_after_reading_waits_for_the_benchs_own_load_to_leave(monkeypatch):
    """Right at its end the bench's own work is in the 1-minute load; the after-reading waits
    (at most SETTLE_S) for the average to fall, and reads at once when it already has."""
    from recipes.perf.bench import nets

    loads = iter([2.1, 1.9, 1.6, 1.2])
    monkeypatch.setattr(nets.os, "getloadavg", lambda: (next(loads), 1.0, 1.0))
    waited = []
    monkeypatch.setattr(nets.time, "sleep", waited.append)
    monkeypatch.setattr(nets, "host_state", lambda: {"load": [1.2, 1.0, 1.0], "busy_pct": 2.0})
    assert nets.settled_host_state(every_s=5.0)["load"][0] == 1.2
    assert waited == [5.0, 5.0, 5.0]


def test_merging_a_one_recipe_bench_keeps_the_others_and_drops_unused_nets():
    from recipes.perf.bench import nets

    old = nets.build_table("cpu", _measured(), {"torch": _hand_setup({"net.a": _info("a"), "net.b": _info("b")})},
                           {"torch": {"net.a": [0.1], "net.b": [0.1]}})
    old["recipes"]["other"] = {"textures": {"cells": {"": {"net": "net.a", "seeds": 2, "steps_per_epoch": 1}}}}
    setup = _hand_setup({"net.c": _info("c")})
    for cell in setup["recipes"]["rec"]["textures"]["cells"].values():
        cell["net"] = "net.c"
    new = nets.build_table("cpu", _measured(load_after=2.0), {"torch": setup}, {"torch": {"net.c": [0.2]}})
    merged = nets.merge_tables(old, new)
    assert set(merged["recipes"]) == {"rec", "other"}
    assert set(merged["nets"]) == {"net.a", "net.c"}            # net.b: no recipe trains it any more
    assert merged["measured"]["earlier"]["recipes"] == ["other"]
    assert merged["measured"]["quiet"] is False                  # the new part was not measured quietly
    assert nets.merge_tables({**old, "scale": "smoke"}, new) is new


def test_net_signature_tells_nets_apart_by_what_costs_time():
    """Seeds, initialisers and the data set's mean/std do not change a step; width, mode (what
    is trainable), optimizer and batch do."""
    from recipes.perf.bench.nets import net_signature

    def key(batch=8, optimizer="sgd", **config):
        config = {"width": 8, "depth": 1, "kernel_size": 3, "patch_size": 2, "num_classes": 4,
                  "input_shape": (8, 8, 1), **config}
        model = zoo.create_model("convmixer", **config)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        return net_signature(model, [[batch, 8, 8, 1], [batch]])

    base, info = key()
    assert base.startswith("convmixer_8_1.") and info["batch"] == 8 and info["input_shape"] == [8, 8, 1]
    assert info["params"] == info["trainable_params"] > 0 and key(mode="chans")[1]["trainable_params"] < info["params"]
    assert key(seed=3)[0] == base and key(mean=[0.5], std=[0.2])[0] == base
    for other in (key(width=16), key(mode="chans"), key(optimizer="adam"), key(batch=16)):
        assert other[0] != base


def test_probing_a_recipe_builds_its_nets_without_training(tmp_path):
    """The probe runs the recipe's own run_cell up to its training: the nets come out built as
    the cell builds them (depth-strip cuts its ResNet-50 short), and nothing is trained or saved."""
    from recipes.core.registry import get_recipe
    from recipes.perf.bench.nets import probe_cells

    found = probe_cells(get_recipe("depth-strip"), "smoke", "textures", str(tmp_path))
    assert [config for config, _, _, _ in found] == [{"strip": 0}, {"strip": 6}]
    names = []
    for config, seeds, probe, cell in found:
        assert seeds == 1 and probe is not None and probe.train is not None and probe.epochs == 1
        model = probe.build()
        probe.compile_model(model)
        assert type(model.optimizer).__name__.endswith("SGD") and model.input_shape == (None, 32, 32, 1)
        names.append(model.name)
    assert names == ["resnet50_cifar", "resnet50_strip6"]
    assert not any(p.name.endswith(".keras") for p in tmp_path.rglob("*"))
    # a recipe that trains nothing has no probe
    assert all(probe is None for _, _, probe, _ in probe_cells(get_recipe("spectral-envelope"), "smoke", "digits",
                                                               str(tmp_path)))


@pytest.mark.parametrize("args, words", [
    (["--nets", "paper"], ["paper", "cpu", "smoke"]),
    (["--nets", "cpu", "--recipes", "depth-strip,nope"], ["nope", "depth-strip"]),
    (["--nets", "smoke", "--table", "/proc/no/such/dir/t.json"], ["/proc/no/such/dir", "--table"]),
])
def test_bench_nets_bad_input_is_one_line(args, words):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "recipes.cli", "bench", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and all(w in proc.stderr for w in words), proc.stderr


@pytest.mark.slow
def test_bench_nets_smoke_end_to_end(tmp_path):
    """One recipe at smoke scale on the default backend: the table has its cells, each mapped
    to a net with times (a correctness run, no timing assertions)."""
    backend = keras.backend.backend()
    table_path = tmp_path / "steptimes.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "recipes.cli", "bench", "--nets", "smoke", "--recipes",
                           "static-filters", "--backends", backend, "--quick", "--table", str(table_path), "--quiet"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = json.loads(table_path.read_text())
    cells = table["recipes"]["static-filters"]["digits"]["cells"]
    assert set(cells) == {f"filters={f}" for f in ("full", "random", "same", "box", "identity")}
    nets_used = {c["net"] for c in cells.values()}
    assert len(nets_used) == 2   # full, and chans whatever the frozen filters' kind
    for key in nets_used:
        times = table["nets"][key]["backends"][backend]
        assert times["step_ms"] > 0 and times["samples"] == 1 and times["save_s"] > 0
    assert table["measured"]["quick"] and "load" in table["measured"]["before"]
    assert "static-filters (digits)" in proc.stdout and "load average" in proc.stdout
