"""Independent float64 NumPy versions of the losses, written from the papers' formulas.

Deliberately plain (explicit loops, per-sample sums) rather than mirrors of the keras code,
so that a shared mistake is unlikely.
"""
import numpy as np


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax_row(v):
    v = np.asarray(v, np.float64)
    m = v.max()
    return v - (m + np.log(np.sum(np.exp(v - m))))


def nt_xent(z1, z2, tau):
    """SimCLR eq. (1): ℓ(i,j) = −log exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ), mean over 2N anchors."""
    u = _unit(np.concatenate([z1, z2]))
    n2 = len(u)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        denom = sum(np.exp(u[i] @ u[k] / tau) for k in range(n2) if k != i)
        total += -np.log(np.exp(u[i] @ u[j] / tau) / denom)
    return total / n2


def info_nce(q, k, queue, tau):
    """MoCo eq. (1): −log exp(q·k+/τ) / (exp(q·k+/τ) + Σ_i exp(q·k_i/τ)), mean over queries."""
    q, k, queue = _unit(q), _unit(k), _unit(queue)
    losses = []
    for qn, kn in zip(q, k):
        pos = np.exp(qn @ kn / tau)
        neg = sum(np.exp(qn @ kk / tau) for kk in queue)
        losses.append(-np.log(pos / (pos + neg)))
    return np.mean(losses)


def mocov3(q1, q2, k1, k2, tau):
    """MoCo v3 pseudocode: ctr(q, k) = 2τ · CE(q kᵀ/τ, arange(N)); ctr(q1, k2) + ctr(q2, k1)."""

    def ctr(q, k):
        q, k = _unit(q), _unit(k)
        ce = [-_log_softmax_row(q[n] @ k.T / tau)[n] for n in range(len(q))]
        return 2 * tau * np.mean(ce)

    return ctr(q1, k2) + ctr(q2, k1)


def byol(p, z):
    """BYOL eq. (2): ‖p̄ − z̄‖², mean over the batch."""
    return np.mean(np.sum((_unit(p) - _unit(z)) ** 2, axis=1))


def simsiam(p, z):
    """SimSiam eq. (1): −(p/‖p‖)·(z/‖z‖), mean over the batch."""
    p, z = np.asarray(p, np.float64), np.asarray(z, np.float64)
    return -np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(p, z)])


def barlow_twins(z1, z2, lam, eps=1e-5):
    """Barlow Twins eq. (1)-(2) with C_ij = Σ_b z1_bi z2_bj / N after batch standardisation."""

    def bn(z):
        z = np.asarray(z, np.float64)
        return (z - z.mean(0)) / np.sqrt(z.var(0) + eps)  # np.var is the biased variance

    a, b = bn(z1), bn(z2)
    n, d = a.shape
    c = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            c[i, j] = np.sum(a[:, i] * b[:, j]) / n
    loss = 0.0
    for i in range(d):
        for j in range(d):
            loss += (1 - c[i, j]) ** 2 if i == j else lam * c[i, j] ** 2
    return loss


def vicreg_terms(z1, z2, eps=1e-4):
    """VICReg (official code normalisation): invariance MSE, mean of two variance hinges,
    sum of the two covariance penalties Σ_{i≠j} Cov_ij² / D."""
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    inv = np.mean((z1 - z2) ** 2)

    def var_cov(z):
        n, d = z.shape
        std = np.sqrt(np.var(z, axis=0, ddof=1) + eps)
        v = np.mean(np.maximum(0.0, 1.0 - std))
        cov = np.cov(z, rowvar=False)  # unbiased, centred
        off = np.sum(cov**2) - np.sum(np.diag(cov) ** 2)
        return v, off / d

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return inv, (v1 + v2) / 2, c1 + c2


def vicreg(z1, z2, sw, vw, cw, eps=1e-4):
    inv, var, cov = vicreg_terms(z1, z2, eps)
    return sw * inv + vw * var + cw * cov


def sinkhorn(scores, eps, iters):
    """SwAV's Sinkhorn-Knopp in scaling-vector form: Q = N · diag(a) exp(S/ε) diag(b), with
    b = (1/K) / (Pᵀa) and a = (1/N) / (P b) alternated, a starting at 1/ΣP."""
    p = np.exp(np.asarray(scores, np.float64) / eps)
    n, k = p.shape
    a = np.full(n, 1.0 / p.sum())
    b = np.ones(k)
    for _ in range(iters):
        b = (1.0 / k) / (p.T @ a)
        a = (1.0 / n) / (p @ b)
    return n * a[:, None] * p * b[None, :]


def swav(s1, s2, tau, iters, eps):
    """SwAV eq. (1)-(2): ℓ(z_t, q_s) = −Σ_k q_s log softmax(z_t/τ); L = ½[ℓ(1←q2) + ℓ(2←q1)]."""
    q1, q2 = sinkhorn(s1, eps, iters), sinkhorn(s2, eps, iters)

    def ce(q, s):
        return np.mean([-np.sum(q[n] * _log_softmax_row(s[n] / tau)) for n in range(len(s))])

    return 0.5 * (ce(q2, s1) + ce(q1, s2))


def dino(student, teacher, center, ts, tt):
    """DINO eq. (3): Σ_{i global} Σ_{j≠i} H(P_t(x_i), P_s(x_j)), averaged over the pairs."""
    center = np.asarray(center, np.float64).reshape(-1)
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        t = np.asarray(t, np.float64)
        pt = np.exp(np.array([_log_softmax_row((row - center) / tt) for row in t]))
        for j, s in enumerate(student):
            if j == i:
                continue
            s = np.asarray(s, np.float64)
            h = [-np.sum(pt[n] * _log_softmax_row(s[n] / ts)) for n in range(len(s))]
            total += np.mean(h)
            pairs += 1
    return total / pairs
