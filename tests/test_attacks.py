"""Attacks (recipes.core.attacks) on every backend: FGSM, PGD, FGSM adversarial training,
and the three backends agreeing on one checkpoint. Run by scripts/test.sh per backend."""

import json
import os
import textwrap

import keras
import numpy as np
import pytest

import zoo
from recipes.core import attacks, data
from recipes.core.train import export_plain, make_optimizer
from tests.helpers import other_backends, run_python

pytestmark = pytest.mark.backends

EPS = 8 / 255


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small ConvMixer (w=32, k=3, p=2) trained for 6 epochs on digits (~95 % test accuracy), saved."""
    keras.utils.set_random_seed(0)
    spec = data.dataset_spec("digits")
    model = zoo.create_model("convmixer", width=32, depth=1, kernel_size=3, patch_size=2, num_classes=10,
                             input_shape=spec.image_shape, mean=list(spec.mean), std=list(spec.std))
    model.compile(optimizer=make_optimizer("convmixer", 23 * 6, 0.01, 0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = data.load_arrays("digits", "train")
    model.fit(np.array(x), np.array(y), epochs=6, batch_size=64, verbose=0)
    path = str(tmp_path_factory.mktemp("attack") / "model.keras")
    export_plain(model, path)  # as a recipe cell saves it
    xt, yt = data.load_arrays("digits", "test")
    return model, path, np.array(xt), np.array(yt)


def test_fgsm_moves_every_pixel_by_exactly_eps_before_clipping(trained):
    model, _, x, y = trained
    inner = 0.25 + 0.5 * x[:64]                      # in [0.25, 0.75]: no clipping at eps=8/255
    adv = attacks.fgsm(model, inner, y[:64], EPS)
    np.testing.assert_allclose(np.abs(adv - inner), EPS, atol=1e-6)
    clipped = attacks.fgsm(model, x[:64], y[:64], EPS)  # raw digits sit at 0 and 1: clipping applies
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0
    moved = np.abs(clipped - x[:64])
    assert np.all((np.abs(moved - EPS) < 1e-6) | ((clipped == 0.0) | (clipped == 1.0)))
    np.testing.assert_array_equal(attacks.fgsm(model, x[:8], y[:8], 0.0), x[:8])


def test_fgsm_step_is_the_paper_formula(trained):
    model, _, x, y = trained
    grad = np.random.default_rng(0).normal(size=x[:4].shape).astype("float32")
    step = keras.ops.convert_to_numpy(attacks.fgsm_step(x[:4], grad, 0.1))
    np.testing.assert_allclose(step, np.clip(x[:4] + 0.1 * np.sign(grad), 0, 1), atol=1e-7)


def test_pgd_stays_in_the_eps_ball_and_the_valid_range(trained):
    model, _, x, y = trained
    for nb_iter in (1, 2, 5):
        adv = attacks.pgd(model, x[:64], y[:64], EPS, nb_iter=nb_iter, eps_iter=EPS / 2)
        assert np.max(np.abs(adv - x[:64])) <= EPS + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0
    one_step = attacks.pgd(model, x[:64], y[:64], EPS, nb_iter=1)  # eps_iter = eps: one FGSM step
    np.testing.assert_allclose(one_step, attacks.fgsm(model, x[:64], y[:64], EPS), atol=1e-6)


def test_adversarial_accuracy_is_at_most_clean_accuracy(trained):
    model, _, x, y = trained
    clean = attacks.robust_accuracy(model, (x, y), "clean", 0.0)
    fgsm = attacks.robust_accuracy(model, (x, y), "fgsm", EPS)
    pgd = attacks.robust_accuracy(model, (x, y), "pgd", EPS, nb_iter=2)
    assert clean > 0.8
    assert fgsm <= clean and pgd <= clean
    assert fgsm < clean - 0.02  # eps = 8/255 really hurts a standard model
    ds = data.load_dataset("digits", "test", batch_size=100)
    assert attacks.robust_accuracy(model, ds, "fgsm", EPS) == pytest.approx(fgsm)


def test_fgsm_adversarial_training_updates_the_weights(trained):
    _, path, x, y = trained
    model = keras.models.load_model(path)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    logs = attacks.fit_fgsm(model, [(x[:64], y[:64]), (x[64:128], y[64:128])], EPS)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


ATTACK_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras, numpy as np
    from recipes.core import attacks, data
    model = keras.models.load_model({path!r}, compile=False)
    x, y = (np.array(a) for a in data.load_arrays("digits", "test"))
    adv = attacks.fgsm(model, x, y, {eps!r})
    np.save({out!r}, adv)
    print(json.dumps({{"fgsm": attacks.robust_accuracy(model, (x, y), "fgsm", {eps!r}),
                      "pgd": attacks.robust_accuracy(model, (x, y), "pgd", {eps!r}),
                      "backend": keras.backend.backend()}}))
""")


def test_backends_agree_on_one_checkpoint(trained, tmp_path):
    """The checkpoint saved under this backend, attacked here and under the two others in
    subprocesses: FGSM accuracy within 1 point, adversarial images within a small tolerance."""
    model, path, x, y = trained
    here = keras.backend.backend()
    results, images = {}, {}
    for backend in other_backends():
        out = str(tmp_path / f"{backend}.npy")
        proc = run_python(ATTACK_SCRIPT.format(path=path, eps=EPS, out=out), backend,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert results[backend]["backend"] == backend
        images[backend] = np.load(out)
    results[here] = {"fgsm": attacks.robust_accuracy(model, (x, y), "fgsm", EPS),
                     "pgd": attacks.robust_accuracy(model, (x, y), "pgd", EPS)}
    images[here] = attacks.fgsm(model, x, y, EPS)
    print(f"\nattack agreement at eps={EPS:.4f} (accuracy on {len(y)} digits test images):",
          {b: {k: round(v, 4) for k, v in r.items() if k != "backend"} for b, r in results.items()},
          {b: {"pixels differing > 1e-4": float(np.mean(np.abs(images[b] - images[here]) > 1e-4)),
               "max |diff|": float(np.abs(images[b] - images[here]).max())} for b in other_backends()})
    for backend in other_backends():
        assert abs(results[backend]["fgsm"] - results[here]["fgsm"]) <= 0.01, results
        assert abs(results[backend]["pgd"] - results[here]["pgd"]) <= 0.01, results
        diff = np.abs(images[backend] - images[here])
        # a pixel whose gradient is ~0 may take the other sign on another backend (2·eps apart)
        assert np.mean(diff > 1e-4) <= 0.005, (backend, float(np.mean(diff > 1e-4)))
        assert diff.mean() <= 0.01 * EPS, (backend, float(diff.mean()))
