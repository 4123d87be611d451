"""The losses' cross-replica arguments, simulated on one device (tests/train/test_distributed.py
checks them under a real MirroredStrategy)."""
import numpy as np
import pytest
import tensorflow as tf

from sslzoo.losses import barlow_twins_loss, swav_loss, vicreg_loss
from tests.losses.test_swav import _scores


def _replicated(r):
    """An ``all_sum`` as R replicas holding the same rows would see it."""
    return lambda x: tf.nest.map_structure(lambda t: float(r) * t, x)


@pytest.mark.parametrize("loss", [lambda a, b, **k: barlow_twins_loss(a, b, 0.3, **k),
                                  lambda a, b, **k: vicreg_loss(a, b, 1.0, 2.0, 3.0, **k)],
                         ids=["barlow_twins", "vicreg"])
def test_all_sum_gives_the_global_batch(loss):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(scale=0.7, size=(2, 6, 5)).astype(np.float32)
    # Two replicas with these rows each hold the global batch [z; z] (VICReg's unbiased
    # variance makes that differ from the batch z itself).
    want = float(loss(np.tile(z1, (2, 1)), np.tile(z2, (2, 1))))
    assert float(loss(z1, z2, all_sum=_replicated(2))) == pytest.approx(want, rel=1e-5)
    # A batch of one row per replica is allowed: the global batch has two.
    assert np.isfinite(float(loss(z1[:1], z2[:1], all_sum=_replicated(2))))


def test_swav_replicas_average_to_the_global_loss():
    s1, s2 = _scores(1, n=8), _scores(2, n=8)
    want = float(swav_loss(s1, s2))
    shards = [float(swav_loss(s1[r:r + 4], s2[r:r + 4], all_scores1=s1, all_scores2=s2,
                              offset=r)) for r in (0, 4)]
    assert np.mean(shards) == pytest.approx(want, rel=1e-6)
    # Sinkhorn-Knopp over each half alone gives other codes, so another loss.
    local = [float(swav_loss(s1[r:r + 4], s2[r:r + 4])) for r in (0, 4)]
    assert abs(np.mean(local) - want) > 1e-3
