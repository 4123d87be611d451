"""The methods of issue 21 (NNCLR, DCL/DCLW, TiCo, W-MSE, MMCR) as models: each model's loss
is its formula on the model's own projections (float64 references of tests/losses), and
each keeps its state (support set, running covariance) as the paper says."""
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo import methods
from sslzoo.data.augment import ManyViews
from sslzoo.errors import ConfigError
from sslzoo.optim import make_optimizer
from sslzoo.utils.seeds import seed_for
from tests.losses import reference_more as ref

HEADS = dict(image_size=16, num_classes=10, proj_hidden_dim=32, proj_dim=16, crr_every=0)


def _model(name, **hp):
    m = methods.build(name, "resnet_tiny", **HEADS, **hp)
    methods.set_training_length(m, 4, 2)
    m.compile(make_optimizer("sgd", 0.05))
    m.build_all()
    return m


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3)).astype("float32")


def _forward(m, images):
    return m.forward(ops.convert_to_tensor(images), training=True)


def test_nnclr_loss_uses_the_support_sets_neighbours_and_pushes_view_one(images):
    m = _model("nnclr", pred_hidden_dim=16, queue_size=24)
    support = m.queue.values.numpy().copy()
    out = _forward(m, images)
    loss = float(m.ssl_loss(out, 8))
    z = out.proj.numpy().astype(np.float64)
    p = m.predictor(out.proj, training=True).numpy().astype(np.float64)
    nn1, nn2 = (ref.nearest_neighbours(z[:8], support), ref.nearest_neighbours(z[8:], support))
    want = 0.5 * (ref.nnclr(p[8:], nn1, 0.1) + ref.nnclr(p[:8], nn2, 0.1))
    assert loss == pytest.approx(want, rel=1e-4)
    m.after_update(out)
    z1 = z[:8] / np.linalg.norm(z[:8], axis=1, keepdims=True)
    np.testing.assert_allclose(m.queue.values.numpy()[:8], z1, atol=1e-6)
    np.testing.assert_array_equal(m.queue.values.numpy()[8:], support[8:])


@pytest.mark.parametrize("weighted", [0, 1])
def test_dcl_and_dclw_are_one_method(images, weighted):
    m = _model("dcl", weighted=weighted)
    out = _forward(m, images)
    z = out.proj.numpy().astype(np.float64)
    want = ref.dcl(z[:8], z[8:], 0.1, 0.5 if weighted else None)
    assert float(m.ssl_loss(out, 8)) == pytest.approx(want, rel=1e-4)


def test_dcl_refuses_a_non_boolean_weighted():
    with pytest.raises(ConfigError, match="weighted must be a boolean"):
        methods.build("dcl", "resnet_tiny", **HEADS, weighted=2)


def test_tico_keeps_its_running_covariance(images):
    m = _model("tico", momentum=0.5)
    assert not m.covariance.trainable and np.all(m.covariance.numpy() == 0)
    out = _forward(m, images)
    loss = float(m.ssl_loss(out, 8))
    z1 = out.proj.numpy()[:8].astype(np.float64)
    z2 = m.teacher(out.images[8:]).numpy().astype(np.float64)
    want, c = ref.tico(z1, z2, np.zeros((16, 16)), 0.9, 8.0)
    assert loss == pytest.approx(want, rel=1e-4)
    m.after_update(out)
    np.testing.assert_allclose(m.covariance.numpy(), c, atol=1e-6)
    assert any(v is m.covariance for v in m.non_trainable_weights)  # checkpointed


def test_wmse_cuts_sub_batches_by_seed_and_step(images):
    a, b = _model("wmse", w_size=4, w_eps=0.1), _model("wmse", w_size=4, w_eps=0.1)
    b.set_weights(a.get_weights())
    out_a, out_b = _forward(a, images), _forward(b, images)
    z = out_a.proj.numpy().astype(np.float64)
    first = float(a.ssl_loss(out_a, 8))
    assert float(b.ssl_loss(out_b, 8)) == first  # same seed, same step: same sub-batches
    perm = tf.random.experimental.stateless_shuffle(tf.range(8), seed_for(0, "wmse", 0)).numpy()
    assert first == pytest.approx(ref.wmse(z[:8], z[8:], 4, 0.1, perm), rel=1e-4)
    losses = set()
    for step in range(1, 6):
        a.optimizer.iterations.assign(step)
        losses.add(round(float(a.ssl_loss(out_a, 8)), 6))
    assert len(losses) > 1  # the cut changes with the step


def test_wmse_refuses_a_sub_batch_too_small_to_whiten():
    with pytest.raises(ConfigError, match="w_size=16 must exceed proj_dim=16"):
        methods.build("wmse", "resnet_tiny", **HEADS, w_size=16)


def test_many_views_are_distinct_and_seeded(images):
    layer = ManyViews("simclr", 16, views=4)
    seed = tf.constant([1, 2], tf.int64)
    views = layer(images[:4], seed=seed)
    again = layer(images[:4], seed=seed)
    assert len(views) == 4 and all(v.shape == (4, 16, 16, 3) for v in views)
    assert all(np.array_equal(v, w) for v, w in zip(views, again))
    assert not np.array_equal(views[0], views[3])
    with pytest.raises(ConfigError, match="views >= 2"):
        ManyViews("simclr", 16, views=1)


def test_mmcr_with_three_views_trains_on_its_own_views(images):
    m = _model("mmcr", views=3)
    assert m.local_crops == 1 and isinstance(m.view_layer(), ManyViews)
    v1, v2, v3 = m.view_layer()(images[:8])
    out = m.forward(ops.concatenate([v1, v2], 0), training=True)
    out.local_proj = m.forward_local([v3])
    z = np.stack([out.proj.numpy()[:8], out.proj.numpy()[8:], out.local_proj.numpy()], axis=1)
    assert float(m.ssl_loss(out, 8)) == pytest.approx(ref.mmcr(z.astype(np.float64), 0.0),
                                                       rel=1e-4)
    layer = m.view_layer()
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 10)).batch(8).map(
        lambda x, y: (layer(x), y))
    logs = m.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1]) and int(m.optimizer.iterations) == 2


def test_emp_ssl_takes_its_patches_and_its_coding_rate(images):
    m = _model("emp_ssl", patches=3, inv_weight=2.0)
    assert m.local_crops == 1 and m.view_layer()._recipe.crop_scale == (0.25, 0.25)
    p1, p2, p3 = m.view_layer()(images[:8])
    out = m.forward(ops.concatenate([p1, p2], 0), training=True)
    out.local_proj = m.forward_local([p3])
    z = np.stack([out.proj.numpy()[:8], out.proj.numpy()[8:], out.local_proj.numpy()], axis=1)
    assert float(m.ssl_loss(out, 8)) == pytest.approx(
        ref.emp_ssl(z.astype(np.float64), 0.2, 2.0), rel=1e-4)
    with pytest.raises(ConfigError, match="patches must be an integer >= 2"):
        methods.build("emp_ssl", "resnet_tiny", **HEADS, patches=1)
