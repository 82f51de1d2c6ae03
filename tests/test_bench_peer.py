"""The bench's plain-PyTorch peer is the zoo's ConvMixer; the fast ops keep the numerics."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.helpers import to_numpy


def tiny_convmixer(mode="full"):
    return zoo.create_model("convmixer", width=16, depth=2, kernel_size=3, patch_size=2, num_classes=5,
                            input_shape=(8, 8, 3), mode=mode)


@pytest.mark.parametrize("mode", ["full", "chans"])
def test_peer_has_same_parameters_and_outputs(mode):
    torch = pytest.importorskip("torch")
    from recipes import torch_peer

    model = tiny_convmixer(mode)
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype="float32")
    model(x, training=True)  # BN statistics off their defaults, so they are really copied
    net = torch_peer.convmixer(width=16, depth=2, kernel_size=3, patch_size=2, num_classes=5)
    torch_peer.set_mode(net, mode)
    counts = zoo.count_params(model)
    assert torch_peer.count_params(net) == sum(counts.values())
    assert torch_peer.count_params(net, trainable_only=True) == \
        counts["spatial_trainable"] + counts["channel_trainable"] + counts["other_trainable"]
    torch_peer.copy_weights_from_keras(model, net)
    net.eval()
    with torch.no_grad():
        peer = net(torch_peer.from_nhwc(x)).numpy()
    np.testing.assert_allclose(peer, to_numpy(model(x, training=False)), atol=1e-4)


@pytest.mark.backends
def test_fast_ops_keep_outputs_and_gradients():
    """One SGD step from the same weights, plain vs fast ops: same outputs, same new weights
    (new weight = old − lr·gradient, so equal weights mean equal gradients)."""
    from recipes import speed

    rng = np.random.default_rng(1)
    x = rng.random((8, 8, 8, 3), dtype="float32")
    y = rng.integers(0, 5, 8)

    def step(fast):
        keras.utils.set_random_seed(3)
        if fast:
            speed.apply_fast_ops()
        else:
            speed.remove_fast_ops()
        try:
            model = tiny_convmixer()
            out_train = to_numpy(model(x, training=True))
            model.compile(optimizer=keras.optimizers.SGD(0.1),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.train_on_batch(x, y)
            return out_train, to_numpy(model(x, training=False)), [to_numpy(w) for w in model.weights]
        finally:
            speed.remove_fast_ops()

    plain, fast = step(False), step(True)
    np.testing.assert_allclose(fast[0], plain[0], atol=1e-4)
    np.testing.assert_allclose(fast[1], plain[1], atol=1e-4)
    for a, b in zip(fast[2], plain[2]):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_tiny_bench_runs_and_reports_every_case(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "recipes.bench", "--size", "tiny", "--json", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert not report["errors"], report["errors"]
    summary = report["summary"]
    assert any(key.endswith("@peer") for key in summary)
    for key, case in summary.items():
        assert case["ms"]["median"] > 0, key
    assert "vs_peer" in next(c for k, c in summary.items() if "convmixer/full/train@" in k and not k.endswith("@peer"))
    assert report["roof_gflops"] > 0
    assert "peer" in proc.stdout or summary  # the table goes to stdout
