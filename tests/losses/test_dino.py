import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import dino_loss
from tests.losses import reference as ref


def _crops(seed=0, n_student=4, n_teacher=2, n=3, k=5):
    rng = np.random.default_rng(seed)
    s = list(rng.normal(size=(n_student, n, k)).astype(np.float32))
    t = list(rng.normal(size=(n_teacher, n, k)).astype(np.float32))
    c = rng.normal(scale=0.3, size=(k,)).astype(np.float32)
    return s, t, c


def test_matches_reference():
    s, t, c = _crops()
    for ts, tt in ((0.1, 0.04), (0.1, 0.07), (1.0, 1.0)):
        assert float(dino_loss(s, t, c, ts, tt)) == pytest.approx(ref.dino(s, t, c, ts, tt), rel=1e-5)
    # center given as (1, K), crops as a tuple
    assert float(dino_loss(tuple(s), t, c[None])) == pytest.approx(ref.dino(s, t, c, 0.1, 0.04), rel=1e-5)


def test_identical_student_teacher_gives_teacher_entropy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    tau = 0.5
    p = np.exp(x / tau) / np.exp(x / tau).sum(axis=1, keepdims=True)
    entropy = np.mean(-np.sum(p * np.log(p), axis=1))
    got = float(dino_loss([x, x, x], [x, x], np.zeros(6, np.float32), tau, tau))
    assert got == pytest.approx(entropy, rel=1e-5)


def test_pairs_skip_same_crop():
    # Teacher crop 0 equals student crop 0 exactly but is far from student crop 1: only the
    # (0, 1) pair counts, so the loss is the cross-entropy to crop 1.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3, 4)).astype(np.float32)
    got = float(dino_loss([a, b], [a], np.zeros(4, np.float32)))
    assert got == pytest.approx(ref.dino([b, b], [a], np.zeros(4), 0.1, 0.04), rel=1e-5)
    assert got != pytest.approx(ref.dino([a, a], [a], np.zeros(4), 0.1, 0.04), rel=1e-2)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    s, t, c = _crops(3)
    hs, ht, hc = [ops.cast(x, dtype) for x in s], [ops.cast(x, dtype) for x in t], ops.cast(c, dtype)
    out = dino_loss(hs, ht, hc)
    assert out.dtype == "float32"
    up = dino_loss([ops.cast(x, "float32") for x in hs], [ops.cast(x, "float32") for x in ht], ops.cast(hc, "float32"))
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    # Against the unrounded inputs: bfloat16's input rounding (~4e-3) is amplified by
    # 1/τ_t = 25, so its tolerance is looser; the float32 compute is shown just above.
    rel = 1e-3 if dtype == "float16" else 5e-3
    assert float(out) == pytest.approx(float(dino_loss(s, t, c)), rel=rel)


def test_scheduled_teacher_temperature_tensor():
    s, t, c = _crops(4)
    got = float(dino_loss(s, t, c, teacher_temp=tf.constant(0.05)))
    assert got == pytest.approx(ref.dino(s, t, c, 0.1, 0.05), rel=1e-5)


def test_gradient_only_to_student():
    s, t, c = _crops(5, n_student=2, n_teacher=1)
    vs = [tf.Variable(x) for x in s]
    vt, vc = tf.Variable(t[0]), tf.Variable(c)
    ts, tt = 0.1, 0.04
    with tf.GradientTape() as tape:
        loss = dino_loss(vs, [vt], vc, ts, tt)
    g0, g1, gt, gc = tape.gradient(loss, vs + [vt, vc])
    assert gt is None and gc is None
    assert g0 is None or not np.any(g0.numpy())  # student crop 0 is only paired with itself
    # Single pair (0, 1): ∂L/∂s1 = (softmax(s1/τs) − P_t) / (N τs).
    logits = (t[0].astype(np.float64) - c) / tt
    pt = np.exp(logits - logits.max(1, keepdims=True))
    pt /= pt.sum(1, keepdims=True)
    s1 = s[1].astype(np.float64) / ts
    ps = np.exp(s1) / np.exp(s1).sum(1, keepdims=True)
    # atol: entries up to ~3.3 are differences of probabilities scaled by 1/(Nτs) ≈ 3.3
    np.testing.assert_allclose(g1.numpy(), (ps - pt) / (len(s[1]) * ts), rtol=1e-4, atol=2e-6)


def test_errors():
    s, t, c = _crops()
    cases = [
        (dict(student_out=[]), "non-empty list"),
        (dict(teacher_out=t[0]), "non-empty list"),
        (dict(student_out=s[:1], teacher_out=t[:1]), "at least one"),
        (dict(student_out=s[:1]), "no more teacher"),
        (dict(student_out=s[:3] + [s[3][:, :4]]), r"student_out\[3\]"),
        (dict(teacher_out=[t[0], t[1][:2]]), r"teacher_out\[1\]"),
        (dict(teacher_out=[t[0][None], t[1]]), r"teacher_out\[0\] must be an \(N, K\)"),
        (dict(center=c[:4]), "center"),
        (dict(center=np.stack([c, c])), "center"),
        (dict(center=np.float32(0.0)), "center"),
        (dict(student_temp=0.0), "student_temp"),
        (dict(teacher_temp=-0.04), "teacher_temp"),
    ]
    for kw, msg in cases:
        args = dict(student_out=s, teacher_out=t, center=c)
        args.update(kw)
        with pytest.raises(ConfigError, match=msg):
            dino_loss(**args)
