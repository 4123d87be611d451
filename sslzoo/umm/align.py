"""UMM's alignment terms between early-layer and last-layer features (float32).

``similarity_kl`` (default). For the 2N rows of a batch, with ê = e/‖e‖ (early features,
global-average-pooled, stop-gradient) and ĥ = h/‖h‖ (last-layer features),

    P_ij = softmax_{j≠i}(ê_i·ê_j / τ),   Q_ij = softmax_{j≠i}(ĥ_i·ĥ_j / τ),
    A    = (1/2N) Σ_i KL(P_i ‖ Q_i) = (1/2N) Σ_i Σ_{j≠i} P_ij (log P_ij − log Q_ij).

It pulls the last layer's neighbourhood structure toward the early-layer prior, whose
features still generalise. A = 0 iff the two similarity distributions agree.

``gradient_js``. With g_i = ∂L_SSL/∂z_e,i, the gradient of the SSL loss with respect to the
early features of sample i, p_i = ‖g_i‖⁻¹ / Σ_k ‖g_k‖⁻¹ and u the uniform distribution,

    A = JS(p ‖ u) = ½ KL(p ‖ m) + ½ KL(u ‖ m),   m = (p + u)/2,

which asks every sample to pull on the early features equally (the authors' term, here with
log-probabilities where KL needs them).
"""
from keras import ops

from sslzoo.losses.common import f32, l2_normalize, pooled_f32

ALIGNMENTS = ("similarity_kl", "gradient_js")


def _masked_log_softmax(z, temperature):
    z = l2_normalize(z)
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    eye = ops.eye(ops.shape(z)[0], dtype="bool")
    logits = ops.where(eye, -1e9, logits)
    return ops.log_softmax(logits, axis=-1), eye


def similarity_kl(early, last, temperature=0.1):
    """Mean KL(P_i ‖ Q_i) of the early (prior, stop-gradient) and last similarity rows."""
    log_p, eye = _masked_log_softmax(ops.stop_gradient(pooled_f32(early)), temperature)
    log_q, _ = _masked_log_softmax(pooled_f32(last), temperature)
    terms = ops.where(eye, 0.0, ops.exp(log_p) * (log_p - log_q))
    return ops.mean(ops.sum(terms, axis=-1))


def gradient_norm_distribution(grads, tiny=1e-12):
    """p_i ∝ 1/‖g_i‖ over the batch, from per-sample gradients (N, ...); sums to 1."""
    g = f32(grads)
    norms = ops.sqrt(ops.sum(ops.reshape(ops.square(g), (ops.shape(g)[0], -1)), axis=-1) + tiny)
    inv = 1.0 / norms
    return inv / ops.sum(inv)


def js_to_uniform(p, tiny=1e-12):
    """Jensen–Shannon divergence JS(p ‖ u) of a distribution p (N,) and the uniform u."""
    p = f32(p)
    u = ops.ones_like(p) / ops.cast(ops.shape(p)[0], "float32")
    m = 0.5 * (p + u)
    log_m = ops.log(m + tiny)
    kl_pm = ops.sum(p * (ops.log(p + tiny) - log_m))
    kl_um = ops.sum(u * (ops.log(u) - log_m))
    return 0.5 * (kl_pm + kl_um)
