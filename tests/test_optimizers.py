"""The optimisers against the references they stand for, step for step on the same weights and
gradients: the SGD families against PyTorch's `SGD(momentum=0.9, weight_decay=wd)` (coupled
L2), the ConvMixer's AdamW against PyTorch's AdamW after `clip_grad_norm_(params, 1.0)` (the
global norm). Marked `backends`: run it once per Keras backend. Also: a checkpoint holding
the optimiser resumes to the same weights, and the exported model loads with plain Keras."""

import os

import keras
import numpy as np
import pytest
import torch

from recipes.core.train import CoupledSGD, OneCycleLinear, export_plain, make_optimizer
from tests.helpers import run_python, to_numpy

SHAPES = [(3, 4), (4,), (2, 2, 3, 5)]   # a kernel, a bias, a conv kernel
STEPS = 6


def start_and_gradients(scale=1.0, seed=0):
    """Initial weights and STEPS gradients per weight (float32), fixed by `seed`."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s).astype("float32") for s in SHAPES]
    grads = [[scale * rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def keras_steps(optimizer, weights, grads):
    """The weights after each step of `optimizer` on Keras variables."""
    variables = [keras.Variable(w.copy(), name=f"w{i}") for i, w in enumerate(weights)]
    out = []
    for step in grads:
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
        out.append([to_numpy(v).copy() for v in variables])
    return out


def torch_steps(make, weights, grads, lr_at, clip=None):
    """The weights after each step of the torch optimiser `make(params)`, the learning rate of
    step i set to lr_at(i) before it (as a per-step scheduler does), gradients clipped to a
    global norm of `clip` if given."""
    params = [torch.nn.Parameter(torch.tensor(w.copy())) for w in weights]
    opt = make(params)
    out = []
    for i, step in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        for p, g in zip(params, step):
            p.grad = torch.tensor(g.copy())
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def assert_same_trajectory(ours, reference, rtol=1e-5, atol=1e-6):
    for i, (a, b) in enumerate(zip(ours, reference)):
        for j, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {i + 1}, weight {j}")


def differs(ours, reference, rtol=1e-5, atol=1e-6):
    return any(not np.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(ours[-1], reference[-1]))


@pytest.mark.backends
@pytest.mark.parametrize("wd", [5e-4, 0.05])
def test_coupled_sgd_steps_equal_torch_sgd_through_a_learning_rate_drop(wd):
    """Six steps, momentum 0.9, the learning rate 0.1 for three steps then 0.01 (a step
    schedule's drop): every step equals torch.optim.SGD(momentum=0.9, weight_decay=wd)."""
    weights, grads = start_and_gradients()
    lr_at = lambda i: 0.1 if i <= 2 else 0.01  # noqa: E731
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    ours = keras_steps(CoupledSGD(learning_rate=schedule, momentum=0.9, l2=wd), weights, grads)
    reference = torch_steps(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=wd),
                            weights, grads, lr_at)
    assert_same_trajectory(ours, reference)
    if wd >= 0.05:
        # Keras's own SGD decays outside momentum: this test would catch it
        decoupled = keras_steps(keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, weight_decay=wd),
                                weights, grads)
        assert differs(decoupled, reference)


@pytest.mark.backends
def test_resnet_family_is_coupled_sgd_with_he_step_schedule():
    """make_optimizer('resnet') over 8 steps: lr 0.1, /10 after 50 % and 75 % of training."""
    weights, grads = start_and_gradients()
    grads = grads + grads[:2]   # 8 steps: boundaries at steps 4 and 6
    ours = keras_steps(make_optimizer("resnet", 8, 0.1, 1e-2), weights, grads)
    lr_at = lambda i: 0.1 if i <= 4 else (0.01 if i <= 6 else 0.001)  # noqa: E731
    reference = torch_steps(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
                            weights, grads, lr_at)
    assert_same_trajectory(ours, reference)


@pytest.mark.backends
def test_convmixer_adamw_clips_the_global_norm_as_the_reference():
    """make_optimizer('convmixer') equals torch AdamW(weight_decay) after
    clip_grad_norm_(params, 1.0), with the one-cycle learning rate of each step; gradients
    of global norm ~10, so the clip matters. Clipping each variable apart would not."""
    weights, grads = start_and_gradients(scale=3.0)
    total, lr_max, wd = 10, 0.05, 0.01
    schedule = OneCycleLinear(lr_max, total)
    lr_at = lambda i: float(keras.ops.convert_to_numpy(schedule(i)))  # noqa: E731
    reference = torch_steps(lambda p: torch.optim.AdamW(p, lr=0.0, weight_decay=wd), weights, grads, lr_at, clip=1.0)
    ours = keras_steps(make_optimizer("convmixer", total, lr_max, wd), weights, grads)
    assert_same_trajectory(ours, reference)
    per_variable = keras.optimizers.AdamW(learning_rate=OneCycleLinear(lr_max, total), weight_decay=wd,
                                          epsilon=1e-8, clipnorm=1.0)
    assert differs(keras_steps(per_variable, weights, grads), reference)


@pytest.mark.backends
@pytest.mark.parametrize("family", ["resnet", "convmixer"])
def test_checkpoint_resumes_the_optimizer_and_the_export_loads_plainly(family, tmp_path):
    """A saved compiled model (what an epoch checkpoint is) reloads with its optimiser and its
    state, so training on continues exactly; export_plain's file loads in a fresh interpreter
    that imports nothing of this project."""
    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,))
        x = keras.layers.Dense(8, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(x))
        model.compile(optimizer=make_optimizer(family, 40, 0.1 if family == "resnet" else 0.01, 1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 6)).astype("float32"), rng.integers(0, 3, 16)
    model = build()
    for _ in range(3):
        model.train_on_batch(x, y)
    path = str(tmp_path / "epoch-0001.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert type(again.optimizer) is type(model.optimizer)
    if family == "resnet":
        assert isinstance(again.optimizer, CoupledSGD) and again.optimizer.l2 == pytest.approx(1e-3)
    assert int(to_numpy(again.optimizer.iterations)) == 3
    for _ in range(3):
        model.train_on_batch(x, y)
        again.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    plain = str(tmp_path / "model.keras")
    export_plain(again, plain)
    code = ("import sys, keras, numpy as np; m = keras.models.load_model(sys.argv[1], safe_mode=True); "
            "assert getattr(m, 'optimizer', None) is None; print(tuple(m(np.ones((1, 6), 'float32')).shape))")
    proc = run_python(code.replace("sys.argv[1]", repr(plain)), keras.backend.backend(), cwd=os.path.dirname(plain),
                      env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(1, 3)" in proc.stdout


# --------------------------------------------------------------------------- the reference schedules

def lr_at(optimizer, step):
    return float(keras.ops.convert_to_numpy(optimizer._learning_rate(step)))


def test_cifar100_family_warms_up_then_divides_by_five_at_60_120_160_of_200_epochs():
    """weiaicunzai/pytorch-cifar100: one warm-up epoch, ×0.2 at epochs 60, 120, 160 (here
    10 steps an epoch)."""
    opt = make_optimizer("cifar100", 2000, 0.1, 5e-4)
    assert isinstance(opt, CoupledSGD) and opt.l2 == 5e-4
    assert lr_at(opt, 0) == pytest.approx(0.01) and lr_at(opt, 4) == pytest.approx(0.05)
    for step, lr in ((9, 0.1), (10, 0.1), (599, 0.1), (600, 0.02), (1199, 0.02), (1200, 0.004), (1600, 0.0008),
                     (1999, 0.0008)):
        assert lr_at(opt, step) == pytest.approx(lr, rel=1e-5), step


def test_mobilenet_v2_family_decays_by_0_98_every_300th_of_training():
    opt = make_optimizer("mobilenet_v2", 3000, 0.045, 4e-5)   # 300 epochs of 10 steps
    for step, epoch in ((0, 0), (9, 0), (10, 1), (25, 2), (2999, 299)):
        assert lr_at(opt, step) == pytest.approx(0.045 * 0.98 ** epoch, rel=1e-5), step


def test_squeezenet_family_decays_as_the_square_root_to_zero():
    opt = make_optimizer("squeezenet", 100, 0.08, 2e-4)   # the authors' solver: poly, power 0.5
    for step in (0, 19, 75, 99, 100):
        assert lr_at(opt, step) == pytest.approx(0.08 * (1 - step / 100) ** 0.5, rel=1e-5, abs=1e-9), step
    with pytest.raises(ValueError, match="unknown schedule family"):
        make_optimizer("adam", 100, 0.1, 0.0)
