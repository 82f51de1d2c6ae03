import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    yield


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
