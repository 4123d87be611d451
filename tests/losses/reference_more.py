"""Independent float64 NumPy versions of the newer losses (NNCLR, DCL/DCLW, TiCo, W-MSE,
DeepCluster-v2, MMCR), written from the papers' formulas.

Plain per-sample loops and explicit sums, not mirrors of the keras code, so that a shared
mistake is unlikely. Last, two checks the new losses' tests share.
"""
import numpy as np
import pytest
from keras import ops

from sslzoo.errors import ConfigError


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def nearest_neighbours(z, support):
    """NN(z, Q) = argmax_{q ∈ Q} cos(z, q), returned L2-normalised."""
    z, q = _unit(z), _unit(support)
    out = []
    for row in z:
        best = max(range(len(q)), key=lambda j: float(row @ q[j]))
        out.append(q[best])
    return np.array(out)


def nnclr(p, nn, tau):
    """−log exp(nn_i·p_i/τ) / Σ_k exp(nn_i·p_k/τ), mean over i (both normalised; eq. 3)."""
    p, nn = _unit(p), _unit(nn)
    total = 0.0
    for i in range(len(p)):
        denom = sum(np.exp(nn[i] @ p[k] / tau) for k in range(len(p)))
        total += -np.log(np.exp(nn[i] @ p[i] / tau) / denom)
    return total / len(p)


def dcl(z1, z2, tau, sigma=None):
    """Yeh et al. eq. (6): −w_i s_pos/τ + log Σ_{k ∉ {i, pos}} exp(s_ik/τ) over the 2N anchors;
    w_i = 1 (DCL) or 2 − 2N exp(s_pos_i/σ) / Σ_j exp(s_pos_j/σ), j over the 2N anchors (DCLW)."""
    u = np.concatenate([_unit(z1), _unit(z2)])
    m = len(u)
    n = m // 2
    pos = [(i + n) % m for i in range(m)]
    s_pos = np.array([u[i] @ u[pos[i]] for i in range(m)])
    if sigma is None:
        w = np.ones(m)
    else:
        e = np.exp(s_pos / sigma)
        w = 2.0 - m * e / e.sum()
    total = 0.0
    for i in range(m):
        neg = sum(np.exp(u[i] @ u[k] / tau) for k in range(m) if k not in (i, pos[i]))
        total += -w[i] * s_pos[i] / tau + np.log(neg)
    return total / m


def tico(z1, z2, c, beta, rho):
    """TiCo: C' = βC + (1−β)/N Σ_i ẑ1_iᵀẑ1_i; L = −mean ẑ1·ẑ2 + ρ mean ẑ1 C' ẑ1ᵀ. (L, C')."""
    a, b = _unit(z1), _unit(z2)
    n, d = a.shape
    outer = np.zeros((d, d))
    for row in a:
        outer += np.outer(row, row)
    new_c = beta * np.asarray(c, np.float64) + (1 - beta) * outer / n
    inv = np.mean([a[i] @ b[i] for i in range(n)])
    cov = np.mean([a[i] @ new_c @ a[i] for i in range(n)])
    return -inv + rho * cov, new_c


def whiten(x, eps=0.0):
    """W (x − mean), W = L⁻¹, L Lᵀ = (1−eps)·cov + eps·I, cov unbiased."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0)
    cov = np.cov(xc, rowvar=False)
    cov = (1 - eps) * cov + eps * np.eye(x.shape[1])
    w = np.linalg.inv(np.linalg.cholesky(cov))
    return np.array([w @ row for row in xc])


def wmse(z1, z2, w_size, eps=0.0, perm=None):
    """W-MSE: whiten each view per sub-batch (rows perm[k·w:(k+1)·w]), then
    mean_n ‖ŷ1_n − ŷ2_n‖² with ŷ the normalised whitened rows."""
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    n = len(z1)
    perm = np.arange(n) if perm is None else np.asarray(perm)
    total = 0.0
    for k in range(n // w_size):
        idx = perm[k * w_size:(k + 1) * w_size]
        y1, y2 = _unit(whiten(z1[idx], eps)), _unit(whiten(z2[idx], eps))
        total += sum(np.sum((y1[j] - y2[j]) ** 2) for j in range(w_size))
    return total / n


def deepcluster_v2(scores, assignments, tau):
    """−log softmax(s_n/τ)[a_n], mean over n."""
    total = 0.0
    for s, a in zip(np.asarray(scores, np.float64), assignments):
        v = s / tau
        total += np.log(np.sum(np.exp(v - v.max()))) + v.max() - v[int(a)]
    return total / len(assignments)


def mmcr(z, lmda):
    """MMCR: −‖C‖_* + λ/n Σ_i ‖Z_i‖_*, views normalised, C the per-image centroids."""
    u = _unit(z)
    centroids = np.array([u[i].mean(0) for i in range(len(u))])
    loss = -np.linalg.svd(centroids, compute_uv=False).sum()
    local = sum(np.linalg.svd(u[i], compute_uv=False).sum() for i in range(len(u)))
    return loss + lmda * local / len(u)


def assert_mixed_precision(loss, arrays, dtype, rel=1e-2):
    """loss(*arrays cast to dtype) is a float32 scalar, equal to the loss of the same rounded
    values given as float32 (so it is computed in float32) and within ``rel`` of the loss of
    the unrounded float32 arrays."""
    low = [ops.cast(a, dtype) for a in arrays]
    out = loss(*low)
    assert out.dtype == "float32"
    assert float(out) == pytest.approx(float(loss(*(ops.cast(h, "float32") for h in low))),
                                       rel=1e-6)
    assert float(out) == pytest.approx(float(loss(*arrays)), rel=rel)


def assert_pair_shape_errors(loss):
    """loss(z1, z2) rejects views of different shapes and views that are not (N, D)."""
    z = np.ones((4, 3), np.float32)
    with pytest.raises(ConfigError, match="same shape"):
        loss(z, z[:, :2])
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        loss(z[0], z[0])


def emp_ssl(z, eps, inv_weight):
    """EMP-SSL: −1/q Σ_j ½ logdet(I + d/(n·eps) Z_jᵀZ_j) − λ/q Σ_j mean_i cos(z_ij, z̄_i), with
    Z_j patch j of every image (rows normalised) and z̄_i image i's mean patch."""
    u = _unit(z)
    n, q, d = u.shape
    rate = 0.0
    for j in range(q):
        zj = u[:, j]
        rate += 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps) * zj.T @ zj)[1]
    cos = 0.0
    for i in range(n):
        centre = u[i].mean(0)
        for j in range(q):
            cos += u[i, j] @ centre / (np.linalg.norm(u[i, j]) * np.linalg.norm(centre))
    return -rate / q - inv_weight * cos / (n * q)
