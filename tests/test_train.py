"""The two reference learning-rate schedules, at their breakpoints."""

import keras
import numpy as np
import pytest

from recipes.core.train import CoupledSGD, OneCycleLinear, make_optimizer, step_decay


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_breakpoints_and_linear_between():
    total, lr_max = 1000, 0.01
    s = OneCycleLinear(lr_max, total)
    assert lr_at(s, 0) == pytest.approx(0.0, abs=1e-9)
    assert lr_at(s, 400) == pytest.approx(lr_max, rel=1e-5)          # 2/5 of training
    assert lr_at(s, 800) == pytest.approx(lr_max / 20, rel=1e-4)     # 4/5 of training
    assert lr_at(s, 1000) == pytest.approx(0.0, abs=1e-9)
    assert lr_at(s, 200) == pytest.approx(lr_max / 2, rel=1e-5)
    assert lr_at(s, 600) == pytest.approx((lr_max + lr_max / 20) / 2, rel=1e-5)
    assert lr_at(s, 900) == pytest.approx(lr_max / 40, rel=1e-4)
    values = [lr_at(s, t) for t in range(0, 1001, 50)]
    assert np.argmax(values) == 8  # the peak is at step 400


def test_one_cycle_round_trips_through_config():
    s = OneCycleLinear(0.05, 77)
    again = OneCycleLinear.from_config(s.get_config())
    assert lr_at(again, 30) == pytest.approx(lr_at(s, 30))


def test_step_decay_divides_by_ten_at_half_and_three_quarters():
    s = step_decay(0.1, 64000)
    assert lr_at(s, 0) == pytest.approx(0.1)
    assert lr_at(s, 31999) == pytest.approx(0.1)
    assert lr_at(s, 32001) == pytest.approx(0.01)
    assert lr_at(s, 48001) == pytest.approx(0.001)
    assert lr_at(s, 63999) == pytest.approx(0.001)


def test_optimizers_follow_the_references():
    adamw = make_optimizer("convmixer", 100, 0.01, 0.01)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.global_clipnorm == 1.0 and adamw.clipnorm is None
    assert adamw.weight_decay == 0.01
    sgd = make_optimizer("resnet", 100, 0.1, 1e-4)   # coupled L2 (tests/test_optimizers.py), not Keras's decay
    assert isinstance(sgd, CoupledSGD) and sgd.momentum == 0.9 and sgd.l2 == 1e-4 and sgd.weight_decay is None
