"""LiDAR, the linear-discriminant effective rank (Thilak et al., ICLR 2024, arXiv 2312.04000).

z is (n, q, d): q views (augmentations) of each of n images, each image a class.

    μ_i = 1/q Σ_j z_ij,    μ = 1/n Σ_i μ_i
    S_b = 1/(n−1) Σ_i (μ_i − μ)(μ_i − μ)ᵀ                         between images
    S_w = 1/(n(q−1)) Σ_i Σ_j (z_ij − μ_i)(z_ij − μ_i)ᵀ + δ·I_d     within images, plus a ridge δ
    Σ   = S_w^{−1/2} S_b S_w^{−1/2},   λ its d eigenvalues
    p_k = λ_k / Σ λ + ε,   LiDAR = exp(−Σ_k p_k log p_k)

S_w^{−1/2} = V diag(w)^{−1/2} Vᵀ from the symmetric eigendecomposition S_w = V diag(w) Vᵀ,
with w floored at a tiny positive value; keep δ > 0 when n(q−1) < d (S_w singular). LiDAR
lies in [1, min(n−1, d)] up to ε. Everything is computed in float32 whatever the input dtype.
"""
from keras import ops

from sslzoo.quality.checks import check_nonnegative, count, nan_unless, prepare
from sslzoo.quality.rank import entropy_effective_rank

_EIG_FLOOR = 1e-12  # floor under S_w's eigenvalues before w^(−1/2)


def _symmetric(m):
    return 0.5 * (m + ops.transpose(m))


def _inverse_sqrt(s):
    """S^{−1/2} of a symmetric positive semi-definite (d, d) matrix, eigenvalues floored."""
    w, v = ops.eigh(_symmetric(s))
    return ops.matmul(v * ops.rsqrt(ops.maximum(w, _EIG_FLOOR))[None, :], ops.transpose(v))


def lidar(z, delta=1e-4, eps=1e-7):
    """LiDAR = exp(−Σ_k p_k log p_k), p_k = λ_k / Σ λ + ε, λ the eigenvalues of
    S_w^{−1/2} S_b S_w^{−1/2} for z (n, q, d): n ≥ 2 images × q ≥ 2 views of each.

    δ ≥ 0 is added to S_w's diagonal (in z's units squared), ε ≥ 0. Returns a float32 scalar.
    """
    check_nonnegative("delta (the ridge δ added to S_w)", delta, 1e-4)
    check_nonnegative("eps (the ε added to each p_k)", eps, 1e-7)
    z, finite = prepare(z, "lidar", "(n, q, d)", {
        0: ("n", 2, "images", "S_b needs several images: score a batch of them"),
        1: ("q", 2, "views of each image", "S_w needs several: embed q >= 2 augmentations"),
        2: ("d", 1, "embedding dimension", "pass non-empty embeddings")})
    n, q = count(z, 0), count(z, 1)
    d = ops.shape(z)[2]
    mu_i = ops.mean(z, axis=1)                                           # (n, d)
    between = mu_i - ops.mean(mu_i, axis=0, keepdims=True)
    s_b = ops.matmul(ops.transpose(between), between) / (n - 1.0)
    within = ops.reshape(z - mu_i[:, None, :], (-1, d))                  # (n·q, d)
    s_w = ops.matmul(ops.transpose(within), within) / (n * (q - 1.0))
    s_w = s_w + float(delta) * ops.eye(d, dtype="float32")
    root = _inverse_sqrt(s_w)
    lam, _ = ops.eigh(_symmetric(ops.matmul(ops.matmul(root, s_b), root)))
    return nan_unless(finite, entropy_effective_rank(lam, float(eps)))
