"""sslzoo.utils.config.is_int: the one integer check the settings and losses share."""
import numpy as np
import pytest

from sslzoo.utils.config import is_int


@pytest.mark.parametrize("value, lower, upper, ok", [
    (3, None, None, True), (np.int64(3), 1, None, True), (0, 1, None, False),
    (True, None, None, False), (np.bool_(True), None, None, False), (3.0, None, None, False),
    ("3", None, None, False), (None, None, None, False), (5, 1, 5, True), (6, 1, 5, False),
])
def test_is_int(value, lower, upper, ok):
    assert is_int(value, lower, upper) is ok
