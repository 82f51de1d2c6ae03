"""A zoo checkpoint is plain Keras: it opens under every backend with no import of zoo."""

import json

import keras
import numpy as np
import pytest

import zoo
from tests.helpers import other_backends, run_python, to_numpy

pytestmark = pytest.mark.backends

LOAD = """
import json, sys
import numpy as np, keras
model = keras.models.load_model({path!r}, safe_mode=True)
x = np.load({x!r})
out = keras.ops.convert_to_numpy(model(x, training=False))
np.save({out!r}, out)
print(json.dumps({{
    "backend": keras.backend.backend(),
    "zoo_imported": any(m == "zoo" or m.startswith("zoo.") for m in sys.modules),
    "trainable": {{layer.name: layer.trainable for layer in model.layers}},
}}))
"""

CASES = {
    "convmixer-chans": ("convmixer", dict(width=16, depth=2, kernel_size=5, patch_size=2, num_classes=10,
                                          input_shape=(16, 16, 3), mode="chans", mean=[0.49, 0.48, 0.45],
                                          std=[0.25, 0.24, 0.26])),
    "resnet-space": ("sep_resnet_cifar", dict(depth=1, width=8, input_shape=(16, 16, 3), mode="space",
                                              filters="smoothed")),
    "unshuffler-chans": ("convmixer_unshuffler", dict(width=8, depth=2, kernel_size=3, input_shape=(8, 8, 1),
                                                      mode="chans")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_checkpoint_loads_under_other_backends_without_zoo(case, tmp_path):
    name, config = CASES[case]
    model = zoo.create_model(name, **config)
    # move BN statistics off their defaults so inference really depends on them
    x_train = np.random.default_rng(1).random((16, *config["input_shape"]), dtype="float32")
    model(x_train, training=True)
    path = str(tmp_path / "model.keras")
    model.save(path)
    x = np.random.default_rng(2).random((4, *config["input_shape"]), dtype="float32")
    np.save(tmp_path / "x.npy", x)
    expected = to_numpy(model(x, training=False))
    expected_flags = {layer.name: layer.trainable for layer in model.layers}
    assert not all(expected_flags.values()) or config["mode"] == "full"
    for backend in other_backends():
        out = tmp_path / f"out_{backend}.npy"
        # cwd outside the repo so `zoo` is not importable by accident from the checkout
        proc = run_python(LOAD.format(path=path, x=str(tmp_path / "x.npy"), out=str(out)), backend, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["backend"] == backend
        assert report["zoo_imported"] is False
        assert report["trainable"] == expected_flags
        np.testing.assert_allclose(np.load(out), expected, atol=1e-5)


def test_same_backend_round_trip_keeps_mode_and_counts(tmp_path):
    model = zoo.create_model("sep_resnet_cifar", depth=1, width=4, input_shape=(8, 8, 3), mode="chans")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert zoo.count_params(loaded) == zoo.count_params(model)
    zoo.set_mode(loaded, "full")
    assert zoo.count_params(loaded)["spatial_frozen"] == 0
