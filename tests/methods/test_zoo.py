"""The method zoo on resnet_tiny at 16 px with tiny heads: fit, UMM, EMA teachers, state."""
import math
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from sslzoo import methods
from sslzoo.methods import base
from sslzoo.methods.state import Queue
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM

TOTAL, PER_EPOCH = 4, 2  # schedule length given to every model; the fits take 2 steps
TINY = {  # tiny heads; EMA momentum 0.5 so one update is far from both ends
    "mocov2": {"queue_size": 12, "momentum": 0.5},
    "mocov3": {"pred_hidden_dim": 16, "momentum": 0.5},
    "byol": {"pred_hidden_dim": 16, "momentum": 0.5},
    "simsiam": {"pred_hidden_dim": 8},
    "barlow_twins": {},
    "vicreg": {},
    "swav": {"num_prototypes": 10, "queue_length": 8, "queue_start_epoch": 0},
    "dino": {"out_dim": 24, "momentum": 0.5},
    "nnclr": {"pred_hidden_dim": 16, "queue_size": 12},
    "dcl": {"weighted": 1},
    "deepcluster_v2": {"num_prototypes": 4, "memory_size": 8},
    "tico": {"momentum": 0.5},
    "wmse": {"w_size": 4, "w_eps": 0.1},
    "mmcr": {},
    "emp_ssl": {"patches": 2, "inv_weight": 2.0},
}
ZOO = sorted(TINY)
# Left out of these resnet_tiny tests: the methods that need a ViT (MAE: its encoder runs on a
# ViT's visible patches; tests/methods/test_mae.py, test_vit_methods.py), with tiny hparams.
VIT_ONLY = {"mae": {"decoder_depth": 1, "decoder_width": 32}}
EMA = [m for m in ZOO if issubclass(methods.get(m), methods.EMAMethod)]


def _build(name, **kw):
    m = methods.build(name, "resnet_tiny", image_size=16, num_classes=10, proj_hidden_dim=32,
                      proj_dim=16, **TINY[name], **kw)
    methods.set_training_length(m, TOTAL, PER_EPOCH)
    return m


def _compile(m):
    m.compile(make_optimizer(methods.get(m.method).optim_defaults["optimizer"], 0.05))
    m.build_all()
    return m


@pytest.fixture(scope="module")
def views():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 16, 16, 3)).astype("float32")
    return tf.constant(x[:8]), tf.constant(x[8:]), tf.constant(np.arange(8) % 10, tf.int32)


def _dataset(views, name):
    v1, v2, y = views
    index = (tf.range(8),) if methods.get(name).needs_index else ()  # DeepCluster-v2's bank
    return tf.data.Dataset.from_tensor_slices(((v1, v2), y, *index)).batch(4)  # 2 steps


@pytest.fixture(scope="module")
def trained(views):
    """One model per method, fitted for 2 steps; its weights at build time (by id) with
    ``"fitted"``: those right after the fit; and the fit's last logs."""
    cache = {}

    def get(name):
        if name not in cache:
            m = _compile(_build(name))
            start = {id(v): v.numpy().copy() for v in m.weights}
            history = m.fit(_dataset(views, name), epochs=1, verbose=0).history
            start["fitted"] = {id(v): v.numpy().copy() for v in m.weights}
            cache[name] = m, start, {k: v[-1] for k, v in history.items()}
        return cache[name]

    return get


def test_registry_lists_the_zoo():
    assert methods.available() == sorted(ZOO + ["simclr", *VIT_ONLY])


@pytest.mark.parametrize("name, optimizer, lr, wd, recipe", [
    ("mocov2", "sgd", 0.03, 1e-4, "simclr"), ("mocov3", "lars", 0.6, 1e-6, "byol"),
    ("byol", "lars", 0.2, 1.5e-6, "byol"), ("simsiam", "sgd", 0.05, 1e-4, "simclr"),
    ("barlow_twins", "lars", 0.2, 1.5e-6, "byol"), ("vicreg", "lars", 0.2, 1e-6, "byol"),
    ("swav", "lars", 0.3, 1e-6, "simclr"), ("dino", "adamw", 5e-4, 0.04, "byol"),
    ("nnclr", "lars", 0.3, 1e-6, "byol"), ("dcl", "lars", 1.0, 1e-6, "simclr"),
    ("deepcluster_v2", "lars", 0.3, 1e-6, "simclr"),
    ("tico", "lars", 0.2, 1.5e-6, "byol"), ("wmse", "adamw", 3e-3, 1e-6, "simclr"),
    ("mmcr", "adamw", 1e-3, 1e-6, "simclr"), ("emp_ssl", "lars", 0.3, 1e-4, "emp_ssl")])
def test_paper_optimizer_and_recipe(name, optimizer, lr, wd, recipe):
    cls = methods.get(name)
    scale = "none" if name in ("wmse", "mmcr", "emp_ssl") else "linear"  # their codes' rates
    assert cls.optim_defaults == {"optimizer": optimizer, "learning_rate": lr,
                                  "weight_decay": wd, "scale": scale}
    assert cls.recipe == recipe


def test_augment_overrides_reach_the_views_of_a_built_model():
    model = methods.build("byol", "resnet_tiny", image_size=16, crr_every=0,
                          augment="crop_scale=0.5:1,flip=0")
    assert model.recipe.crop_scale == (0.5, 1.0) and not model.recipe.flip
    assert model.recipe.solarize == (0.0, 0.2)  # the rest stays the method's
    assert model.view_layer()._recipe == model.recipe
    assert methods.get("byol").recipe == "byol"  # the class default is untouched
    dino = methods.build("dino", "resnet_tiny", image_size=16, crr_every=0, augment="flip=0")
    assert not dino.view_layer()._recipe.flip  # DINO's own crop scales still apply


@pytest.mark.parametrize("name", ZOO)
def test_fit_two_steps_logs_finite_loss_crr_and_collapse_std(trained, name):
    m, _, logs = trained(name)
    assert int(m.optimizer.iterations) == 2
    for key in ("loss", "crr/stage4/delta_r", "collapse_std"):
        assert np.isfinite(logs[key]), (key, logs[key])
    assert 0.1 / math.sqrt(16) < logs["collapse_std"] <= 1.0


@pytest.mark.parametrize("name", ZOO)
def test_umm_trains_every_method(views, name):
    m = _build(name)
    umm = UMM(m, early="stage2")
    heads = [getattr(m, h) for h in ("projector", "predictor", "prototypes") if hasattr(m, h)]
    late = {id(v) for v in umm.late_vars}
    assert all(id(v) in late for h in heads for v in h.trainable_variables)  # heads built
    umm.compile(make_optimizer("sgd", 0.01))
    umm.build_all()
    logs = umm.fit(_dataset(views, name), epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1]) and np.isfinite(logs["crr/stage4/delta_r"][-1])


def _teacher_vars(m):
    return [t for t, _ in m.teacher_pairs(trainable_only=False)]


@pytest.mark.parametrize("name", EMA)
def test_teacher_is_a_frozen_copy_without_gradient(trained, views, name):
    m, start, _ = trained(name)
    teacher = _teacher_vars(m)
    ids = {id(v) for v in teacher}
    assert not ids & {id(v) for v in m.ssl_trainable_variables}
    assert not ids & {id(v) for v in m.optimizer.variables}
    assert not any(v.trainable for v in teacher)
    pairs = list(m.teacher_pairs(trainable_only=False))  # built as an exact copy
    assert all(np.array_equal(start[id(t)], start[id(s)]) for t, s in pairs)
    v1, v2, _ = views
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([v.value for v in teacher])
        out = m.forward(tf.concat([v1[:4], v2[:4]], 0))
        loss = m.ssl_loss(out, 4)
    assert all(g is None for g in tape.gradient(loss, [v.value for v in teacher]))
    assert tape.gradient(loss, m.projector.trainable_variables[0]) is not None


@pytest.mark.parametrize("name", EMA)
def test_teacher_moves_toward_student_by_the_scheduled_momentum(trained, views, name):
    m, _, _ = trained(name)
    k = 2  # the step about to be taken (0-based): cosine τ = 1 − (1 − τ0)(cos(πk/K) + 1)/2
    m.optimizer.iterations.assign(k)
    tau0 = m.hparams["momentum"]
    tau = tau0 if m.hparams["momentum_schedule"] == "constant" else \
        1 - (1 - tau0) * (math.cos(math.pi * k / TOTAL) + 1) / 2
    if name != "mocov2":
        assert m.hparams["momentum_schedule"] == "cosine" and tau == pytest.approx(0.75)
    pairs = list(m.teacher_pairs())
    before = [t.numpy().copy() for t, _ in pairs]
    v1, v2, y = views
    m.train_step(((v1[:4], v2[:4]), y[:4]))
    moved = 0
    for (t, s), t0 in zip(pairs, before):
        np.testing.assert_allclose(t.numpy(), tau * t0 + (1 - tau) * s.numpy(), atol=1e-6)
        moved += not np.allclose(t.numpy(), t0)
    assert moved > len(pairs) // 2


def test_momentum_schedule_endpoints():
    from sslzoo.methods.ema import cosine_momentum
    assert float(cosine_momentum(0.996, 0, 100)) == pytest.approx(0.996)
    assert float(cosine_momentum(0.996, 50, 100)) == pytest.approx(0.998)
    assert float(cosine_momentum(0.996, 100, 100)) == pytest.approx(1.0)
    assert float(cosine_momentum(0.996, 7, 0)) == pytest.approx(0.996)  # K unknown


@pytest.mark.parametrize("name", ["swav", "dino"])
def test_prototypes_frozen_in_the_first_epoch(trained, name):
    m, start, _ = trained(name)  # the fit's 2 steps are 1 epoch of PER_EPOCH
    fitted = start["fitted"]
    kernel, projector = id(m.prototypes.kernel), id(m.projector.trainable_variables[0])
    norm = lambda c: c / np.linalg.norm(c, axis=0, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(norm(fitted[kernel]), norm(start[kernel]), atol=1e-6)
    assert not np.allclose(fitted[projector], start[projector])


def _state(m):
    """Everything a resumed run must continue: step, teacher, queues, centre."""
    out = {"iterations": m.optimizer.iterations.numpy()}
    if isinstance(m, methods.EMAMethod):
        out.update({f"teacher{i}": v.numpy() for i, v in enumerate(_teacher_vars(m))})
    for q in ("queue", "queue1", "queue2"):
        if hasattr(m, q):
            out.update({f"{q}.{a}": getattr(getattr(m, q), a).numpy()
                        for a in ("values", "ptr", "count")})
    for attr in ("center", "covariance"):
        if hasattr(m, attr):
            out[attr] = getattr(m, attr).numpy()
    return out


@pytest.mark.parametrize("name", ["mocov2", "swav", "dino", "byol", "nnclr", "tico"])
def test_state_round_trips_through_a_checkpoint_and_continues(trained, views, tmp_path, name):
    m, _, _ = trained(name)
    saved = _state(m)
    if name in ("dino", "tico"):
        assert np.abs(saved["center" if name == "dino" else "covariance"]).sum() > 0
    if name in ("mocov2", "swav", "nnclr"):
        assert int(saved.get("queue.count", saved.get("queue1.count"))) > 0
    path = tf.train.Checkpoint(model=m, optimizer=m.optimizer, **m.checkpoint_items()).write(
        str(tmp_path / "ckpt"))
    fresh = _compile(_build(name))
    assert any(not np.array_equal(a, saved[k]) for k, a in _state(fresh).items())
    tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer,
                        **fresh.checkpoint_items()).read(path).assert_existing_objects_matched()
    for k, a in _state(fresh).items():
        np.testing.assert_array_equal(a, saved[k], err_msg=k)
    v1, v2, y = views
    batch = ((v1[4:], v2[4:]), y[4:])
    for model in (m, fresh):
        model.reset_metrics()  # "loss" is a running mean; metrics are not checkpointed
    losses = [float(model.train_step(batch)["loss"]) for model in (m, fresh)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    after, resumed = _state(m), _state(fresh)
    for k, a in after.items():
        np.testing.assert_allclose(resumed[k], a, atol=1e-5, err_msg=k)


def test_queue_is_a_ring_buffer():
    q = Queue(4, 2, name="q")
    assert not bool(q.full)
    q.push(np.arange(6, dtype="float32").reshape(3, 2))
    q.push(np.full((3, 2), 9.0, "float32"))
    np.testing.assert_array_equal(q.values.numpy(), [[9, 9], [9, 9], [4, 5], [9, 9]])
    assert int(q.ptr.numpy()) == 2 and int(q.count.numpy()) == 4 and bool(q.full)
    q.push(np.ones((5, 2), "float32"))  # more rows than the queue: the last 4 are kept
    np.testing.assert_array_equal(q.values.numpy(), np.ones((4, 2)))


@pytest.mark.parametrize("graph", [False, True])
def test_collapse_warning_names_the_method_and_value(graph):
    m = methods.build("byol", "resnet_tiny", image_size=16, proj_hidden_dim=16, proj_dim=16,
                      pred_hidden_dim=16, crr_every=0)
    check = tf.function(m.collapse_check) if graph else m.collapse_check
    rng = np.random.default_rng(0)
    spread = tf.constant(rng.normal(size=(32, 16)), tf.float32)
    collapsed = spread * 1e-3 + 1.0  # every row ≈ the same direction
    with mock.patch.object(base.logging, "log_every_n_seconds") as log:
        healthy = float(check(spread))
        log.assert_not_called()
        low = float(check(collapsed))
        log.assert_called_once()
    assert healthy == pytest.approx(1 / math.sqrt(16), rel=0.2)
    assert low < 0.1 / math.sqrt(16)
    args = log.call_args[0]
    assert "byol" in args and args[args.index("byol") + 1] == pytest.approx(low, rel=1e-4)
