"""CRRMonitor: identity, measures only when training, every k calls, NaN-safe, serialisable."""
import keras
import numpy as np
import pytest
from keras import ops

from sslzoo.crr import CRRMonitor
from sslzoo.losses.coding_rate import pair_delta_r
from sslzoo.crr.monitor import crr_logs, monitors_of
from sslzoo.errors import ConfigError


def _pairs(n=8, d=6, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype("float32")
    return np.concatenate([a, a + 0.3 * rng.normal(size=(n, d)).astype("float32")], 0)


def test_identity_and_measures_only_in_training():
    mon = CRRMonitor(name="crr_x")
    x = _pairs()
    np.testing.assert_array_equal(ops.convert_to_numpy(mon(x, training=False)), x)
    assert float(mon.delta_r.value) == 0.0  # inference does not measure
    np.testing.assert_array_equal(ops.convert_to_numpy(mon(x, training=True)), x)
    want = [float(v) for v in pair_delta_r(x[:8], x[8:], eps=0.5, normalize=True)]
    got = [float(getattr(mon, s).value) for s in ("delta_r", "r", "rc")]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[0] > 0


def test_every_k_keeps_values_between_measurements():
    mon = CRRMonitor(every=2)
    mon(_pairs(seed=0), training=True)  # call 0: measured
    first = float(mon.delta_r.value)
    mon(_pairs(seed=1), training=True)  # call 1: skipped
    assert float(mon.delta_r.value) == first
    mon(_pairs(seed=2), training=True)  # call 2: measured
    assert float(mon.delta_r.value) != first


def test_conv_maps_are_pooled_by_default():
    maps = np.random.default_rng(0).normal(size=(8, 3, 3, 5)).astype("float32")
    mon = CRRMonitor()
    mon(maps, training=True)
    pooled = maps.mean(axis=(1, 2))
    want = float(pair_delta_r(pooled[:4], pooled[4:], eps=0.5, normalize=True)[0])
    np.testing.assert_allclose(float(mon.delta_r.value), want, rtol=1e-5)


def test_nonfinite_batch_keeps_previous_values_and_counts():
    mon = CRRMonitor()
    mon(_pairs(), training=True)
    good = float(mon.delta_r.value)
    bad = _pairs(seed=3)
    bad[2, 1] = np.nan
    out = mon(bad, training=True)
    assert np.isnan(ops.convert_to_numpy(out)[2, 1])  # still the identity
    assert float(mon.delta_r.value) == good and int(mon.nonfinite.value) == 1


def test_bad_settings_and_tiny_batch_are_clear_errors():
    with pytest.raises(ConfigError, match="eps must be > 0"):
        CRRMonitor(eps=0)
    with pytest.raises(ConfigError, match="every must be >= 1"):
        CRRMonitor(every=0)
    with pytest.raises(ConfigError, match="partition"):
        CRRMonitor(partition="labels??")
    with pytest.raises(ConfigError, match="at least 2"):
        CRRMonitor()(np.ones((1, 4), "float32"), training=True)


def test_drops_into_a_users_functional_model_and_round_trips(tmp_path):
    inp = keras.Input((6,))
    h = keras.layers.Dense(4)(inp)
    h = CRRMonitor(every=3, eps=0.25, name="crr_hidden")(h)
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    assert set(monitors_of(model)) == {"crr_hidden"}
    model(_pairs(), training=True)
    logs = crr_logs(model)
    assert set(logs) == {"crr/hidden/delta_r", "crr/hidden/r", "crr/hidden/rc"}
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    mon = loaded.get_layer("crr_hidden")
    assert isinstance(mon, CRRMonitor) and mon.every == 3 and mon.eps == 0.25
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(_pairs())),
                               ops.convert_to_numpy(model(_pairs())), rtol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision_with_float32_statistics(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        inp = keras.Input((6,))
        h = CRRMonitor(name="crr_h")(keras.layers.Dense(6)(inp))
        model = keras.Model(inp, h)
        out = model(_pairs(), training=True)
        mon = model.get_layer("crr_h")
        assert out.dtype == keras.mixed_precision.global_policy().compute_dtype
        assert mon.delta_r.value.dtype == "float32" and float(mon.delta_r.value) > 0
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_nonfinite_anywhere_in_a_conv_map_is_caught_after_pooling():
    mon = CRRMonitor()
    maps = np.random.default_rng(4).normal(size=(8, 3, 3, 5)).astype("float32")
    mon(maps, training=True)
    good = float(mon.delta_r.value)
    for bad_value in (np.nan, np.inf):
        bad = maps.copy()
        bad[1, 2, 0, 3] = bad_value  # one location of one channel of one sample
        mon(bad, training=True)
    assert float(mon.delta_r.value) == good and int(mon.nonfinite.value) == 2
