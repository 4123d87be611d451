"""Coding rate and coding rate reduction (MCR², Yu et al. 2020, arXiv 2006.08558), in keras.ops.

Z is (m, d), one row per sample; ε is the allowed distortion (``eps``).

    R(Z)     = ½ · logdet(I_d + d/(m ε²) · ZᵀZ)                                  (eq. 3)
    Rc(Z, Π) = Σ_j tr(Π_j)/(2m) · logdet(I_d + d/(tr(Π_j) ε²) · Zᵀ Π_j Z)          (eq. 8)
    ΔR       = R − Rc  ≥ 0

Π is an (m, k) membership matrix with rows summing to 1 and Π_j = diag(Π[:, j]); integer
labels are its one-hot special case, so there is one code path over Π.

Labels and tracing: integer labels (m,) need the number of classes k. Give ``num_classes``;
without it k = max(label) + 1 is read from the label values, which only works in eager mode.
Inside ``tf.function`` / ``jax.jit`` the values are not static, so pass a static
``num_classes`` or a one-hot/soft (m, k) matrix (whose k is static).

Numerics: everything is computed in float32 whatever the input dtype. Each logdet is of a
symmetric positive definite matrix I + a·G (eigenvalues ≥ 1), taken from its Cholesky factor
(logdet = 2·Σ log diag L) on the cheaper side: the d×d matrix I_d + a·ZᵀZ when d ≤ m, else the
m×m matrix I_m + a·ZZᵀ (equal by Sylvester, det(I + AB) = det(I + BA)). With a static m unknown
(e.g. a traced batch of unknown size) the d side is used.
"""
import numpy as np
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.losses.common import check_positive, l2_normalize
from sslzoo.losses.partition import one_hot_membership
from sslzoo.utils.config import is_int

SIDES = ("auto", "d", "m")
FMAP_MODES = ("pool", "per_location")
_TINY_WEIGHT = 1e-30  # floor under a membership weight before its square root (finite gradients)


# ---------------------------------------------------------------------------------------------
# logdet helpers


def _logdet_spd(M):
    """logdet of a batch (..., n, n) of symmetric positive definite matrices via Cholesky."""
    M = 0.5 * (M + ops.swapaxes(M, -1, -2))
    L = ops.cholesky(M)
    return 2.0 * ops.sum(ops.log(ops.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def _pick_side(m, d, side):
    if side not in SIDES:
        raise unknown_choice("Gram side", side, SIDES)
    if side != "auto":
        return side
    return "d" if d <= m else "m"


def _logdet_i_plus(a, Z, side="auto", weights=None):
    """logdet(I_d + a · Zᵀ diag(w) Z) for Z of shape (..., m, d), batched over leading dims.

    ``a`` is a scalar or an array broadcastable to the leading dims; ``weights`` (..., m) are
    non-negative row weights w (None: all 1) and broadcast against Z's leading dims. ``side``
    "d" builds the d×d matrix I_d + a·Zᵀ W Z, "m" the m×m matrix I_m + a·W^½ Z Zᵀ W^½ (same
    logdet by Sylvester's identity), "auto" the smaller one.
    """
    Z = ops.cast(Z, "float32")
    if side == "auto" and (Z.shape[-2] is None or Z.shape[-1] is None):
        # The size is unknown when traced (e.g. a step retraced for a new batch size): pick the
        # cheaper side when it runs, so the cost stays O(min(m, d)³).
        m, d = ops.shape(Z)[-2], ops.shape(Z)[-1]
        return ops.cond(d <= m, lambda: _logdet_i_plus(a, Z, "d", weights),
                        lambda: _logdet_i_plus(a, Z, "m", weights))
    side = _pick_side(Z.shape[-2], Z.shape[-1], side)
    if weights is not None:
        weights = ops.cast(weights, "float32")
    if side == "d":
        Zw = Z if weights is None else Z * weights[..., :, None]
        G = ops.matmul(ops.swapaxes(Zw, -1, -2), Z)                      # (..., d, d)
    else:
        G = ops.matmul(Z, ops.swapaxes(Z, -1, -2))                       # (..., m, m)
        if weights is not None:
            q = ops.sqrt(ops.maximum(weights, _TINY_WEIGHT))
            G = G * q[..., :, None] * q[..., None, :]
    a = ops.cast(a, "float32")
    a = ops.expand_dims(ops.expand_dims(a, -1), -1)
    eye = ops.eye(ops.shape(G)[-1], dtype="float32")
    return _logdet_spd(eye + a * G)


# ---------------------------------------------------------------------------------------------
# input checks


def _concrete(x):
    """The value of x as a NumPy array, or None when it is symbolic (traced)."""
    if isinstance(x, (np.ndarray, list, tuple, int, float)):
        return np.asarray(x)
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # a traced tensor (tf.function graph, jax tracer) has no value yet
        return None


def _check_eps(eps):
    check_positive("eps (the distortion ε)", eps)


def _prepare_z(Z, normalize, name="Z"):
    """Z as float32 (…, m, d) with a static rank check, optional row L2-normalisation."""
    Z = ops.cast(ops.convert_to_tensor(Z), "float32")
    if len(Z.shape) != 2:
        raise ConfigError(
            f"{name} must be an (m, d) array of m feature rows, got shape {tuple(Z.shape)}; "
            "for (m, H, W, C) conv maps use feature_map_delta_r")
    _check_batch(Z.shape[0])
    return l2_normalize(Z) if normalize else Z


def _check_batch(m):
    if m is not None and m < 2:
        raise ConfigError(f"ΔR needs a batch of at least 2 samples, got m={m}")


def _dim(Z, axis):
    """Static size of an axis as a Python float, else a float32 tensor."""
    n = Z.shape[axis]
    return float(n) if n is not None else ops.cast(ops.shape(Z)[axis], "float32")


def _membership(labels, m, num_classes):
    """(m, k) float32 membership Π from integer labels (m,) or a soft/one-hot matrix (m, k)."""
    if num_classes is not None and not is_int(num_classes, 1):
        raise ConfigError(f"num_classes must be an int >= 1, got {num_classes!r}")
    labels = ops.convert_to_tensor(labels)
    rank = len(labels.shape)
    if rank not in (1, 2):
        raise ConfigError(
            "labels must be integer labels (m,) or a membership matrix (m, k), "
            f"got shape {tuple(labels.shape)}")
    rows = labels.shape[0]
    if rows is not None and m is not None and rows != m:
        kind = "labels" if rank == 1 else "membership matrix rows"
        raise ConfigError(f"got {rows} {kind} for m={m} samples; give one per row of Z")
    value = _concrete(labels)
    if rank == 2:
        k = labels.shape[1]
        if num_classes is not None and k is not None and k != num_classes:
            raise ConfigError(f"membership matrix has {k} columns but num_classes={num_classes}")
        if value is not None:
            value = value.astype("float64")
            if (value < 0).any() or not np.allclose(value.sum(axis=1), 1.0, atol=1e-2):
                raise ConfigError(
                    "a membership matrix must be non-negative with rows summing to 1 "
                    "(one-hot rows for hard labels)")
        return ops.cast(labels, "float32")
    if value is not None:
        if value.size and not np.all(np.equal(np.mod(value, 1), 0)):
            raise ConfigError("integer labels must be whole numbers 0..k-1")
        low = int(value.min()) if value.size else 0
        high = int(value.max()) if value.size else -1
        if low < 0:
            raise ConfigError(f"labels must be >= 0, got {low}")
        if num_classes is None:
            num_classes = high + 1
        elif high >= num_classes:
            raise ConfigError(f"label {high} is out of range for num_classes={num_classes}")
    elif num_classes is None:
        raise ConfigError(
            "integer labels are traced (inside tf.function or jit), so the number of classes "
            "cannot be read from them; pass a static num_classes=k or a one-hot (m, k) matrix")
    return one_hot_membership(labels, int(num_classes))


# ---------------------------------------------------------------------------------------------
# core (batched over leading dims of Z)


def _rate(Z, eps, side="auto"):
    """R(Z) for Z (..., m, d) → (...)."""
    a = _dim(Z, -1) / (_dim(Z, -2) * eps * eps)
    return 0.5 * _logdet_i_plus(a, Z, side)


def _compressed_rate(Z, Pi, eps, side="auto"):
    """Rc(Z, Π) for Z (..., m, d) and Π (m, k) → (...). Empty classes contribute 0."""
    mj = ops.sum(Pi, axis=0)                                             # (k,) = tr(Π_j)
    # d/(m_j ε²) · Zᵀ Π_j Z = d/ε² · Zᵀ diag(Π[:, j]/m_j) Z; the ratio is ≤ 1 and 0 for m_j = 0.
    w = ops.transpose(Pi) / ops.where(mj > 0, mj, 1.0)[:, None]          # (k, m)
    a = _dim(Z, -1) / (eps * eps)
    ld = _logdet_i_plus(a, ops.expand_dims(Z, -3), side, weights=w)     # (..., k)
    return ops.sum(mj / (2.0 * _dim(Z, -2)) * ld, axis=-1)


# ---------------------------------------------------------------------------------------------
# public API


def coding_rate(Z, eps=0.5, normalize=False):
    """R(Z) = ½ · logdet(I_d + d/(m ε²) · ZᵀZ) for Z (m, d); float32 scalar. A stack
    (..., m, d) of such matrices gives one rate each, shape (...) (EMP-SSL's per-patch rates)."""
    _check_eps(eps)
    if len(ops.shape(Z)) > 2:
        Z = ops.cast(ops.convert_to_tensor(Z), "float32")
        _check_batch(Z.shape[-2])
        return _rate(l2_normalize(Z) if normalize else Z, float(eps))
    return _rate(_prepare_z(Z, normalize), float(eps))


def compressed_coding_rate(Z, labels, eps=0.5, num_classes=None, normalize=False):
    """Rc(Z, Π) = Σ_j m_j/(2m) · logdet(I_d + d/(m_j ε²) · Zᵀ Π_j Z); float32 scalar.

    ``labels``: integer labels (m,) with classes 0..k-1 (k = ``num_classes``, or read from the
    values in eager mode) or a membership matrix Π (m, k), rows summing to 1, m_j = Σ_i Π_ij.
    """
    _check_eps(eps)
    Z = _prepare_z(Z, normalize)
    Pi = _membership(labels, Z.shape[0], num_classes)
    return _compressed_rate(Z, Pi, float(eps))


def coding_rate_reduction(Z, labels, eps=0.5, num_classes=None, normalize=False):
    """(ΔR, R, Rc) float32 scalars with ΔR = R − Rc (MCR² objective); labels as in Rc."""
    _check_eps(eps)
    Z = _prepare_z(Z, normalize)
    Pi = _membership(labels, Z.shape[0], num_classes)
    r = _rate(Z, float(eps))
    rc = _compressed_rate(Z, Pi, float(eps))
    return r - rc, r, rc


def pair_labels(n):
    """int32 labels [0..n-1, 0..n-1] for 2n views stacked as [view1 rows; view2 rows]."""
    if isinstance(n, (int, np.integer)) and (isinstance(n, bool) or n < 1):
        raise ConfigError(f"n (the number of images) must be >= 1, got {n!r}")
    idx = ops.arange(n, dtype="int32")
    return ops.concatenate([idx, idx], axis=0)


def _pair_compressed_rate(z1, z2, eps):
    """Rc for the partition of [z1; z2] into the n pairs (z1_i, z2_i), via 2×2 Gram matrices.

    A pair's Gram Z_jᵀZ_j has rank ≤ 2, so by Sylvester logdet(I_d + a Z_jᵀZ_j) =
    logdet(I_2 + a G_j) with G_j = [[g11, g12], [g12, g22]], a = d/(2ε²). The batched 2×2
    determinant is det(I_2 + aG) = 1 + a·tr G + a²·det G with det G = g11·‖z2 − (g12/g11) z1‖²
    (the squared area spanned by the pair; all terms ≥ 0, no cancellation). With m = 2n and
    m_j = 2: Rc = Σ_j (1/m) · logdet(I_2 + a G_j) = ½ · mean_j logdet(I_2 + a G_j).
    """
    d = _dim(z1, -1)
    g11 = ops.sum(ops.square(z1), axis=-1)
    g22 = ops.sum(ops.square(z2), axis=-1)
    g12 = ops.sum(z1 * z2, axis=-1)
    c = g12 / ops.where(g11 > 0, g11, 1.0)
    resid = z2 - c[:, None] * z1
    det_g = g11 * ops.sum(ops.square(resid), axis=-1)
    a = d / (2.0 * eps * eps)
    return 0.5 * ops.mean(ops.log1p(a * (g11 + g22) + a * a * det_g))


def pair_delta_r(z1, z2, eps=0.5, normalize=True):
    """(ΔR, R, Rc) of the 2n views [z1; z2] partitioned into the n augmentation pairs.

    Equal to ``coding_rate_reduction(concat([z1, z2]), pair_labels(n), eps, num_classes=n)``
    but Rc costs O(n·d) (2×2 determinants) instead of n logdets of d×d matrices.
    ``normalize=True`` L2-normalises each row first (zero rows stay zero).
    """
    _check_eps(eps)
    z1 = ops.cast(ops.convert_to_tensor(z1), "float32")
    z2 = ops.cast(ops.convert_to_tensor(z2), "float32")
    s1, s2 = tuple(z1.shape), tuple(z2.shape)
    if len(s1) != 2 or len(s2) != 2:
        raise ConfigError(f"z1 and z2 must be (n, d) arrays, got shapes {s1} and {s2}")
    if any(x is not None and y is not None and x != y for x, y in zip(s1, s2)):
        raise ConfigError(f"z1 and z2 must have the same shape, got {s1} and {s2}")
    if s1[0] is not None and s1[0] < 1:
        raise ConfigError("ΔR needs a batch of at least 2 samples, got n=0 pairs")
    if normalize:
        z1, z2 = l2_normalize(z1), l2_normalize(z2)
    eps = float(eps)
    r = _rate(ops.concatenate([z1, z2], axis=0), eps)
    rc = _pair_compressed_rate(z1, z2, eps)
    return r - rc, r, rc


def feature_map_delta_r(fmap, labels, eps=0.5, mode="pool", num_classes=None, normalize=False):
    """(ΔR, R, Rc) float32 scalars for a conv feature map (m, H, W, C).

    mode "pool": global-average-pool over H, W to (m, C), then ΔR of those features.
    mode "per_location": ΔR, R and Rc of the (m, C) features at each of the H·W locations
    (all locations at once, batched logdets), averaged over the locations.
    ``normalize`` L2-normalises each C-vector (after pooling, or per location).
    """
    if mode not in FMAP_MODES:
        raise unknown_choice("feature-map ΔR mode", mode, FMAP_MODES)
    _check_eps(eps)
    fmap = ops.cast(ops.convert_to_tensor(fmap), "float32")
    if len(fmap.shape) != 4:
        raise ConfigError(f"fmap must be an (m, H, W, C) feature map, got shape {tuple(fmap.shape)}")
    if mode == "pool":
        return coding_rate_reduction(ops.mean(fmap, axis=(1, 2)), labels, eps,
                                     num_classes=num_classes, normalize=normalize)
    m = fmap.shape[0]
    _check_batch(m)
    Pi = _membership(labels, m, num_classes)
    shape = ops.shape(fmap)
    x = ops.reshape(fmap, (shape[0], shape[1] * shape[2], shape[3]))
    x = ops.transpose(x, (1, 0, 2))                                      # (H·W, m, C)
    if normalize:
        x = l2_normalize(x)
    eps = float(eps)
    r = ops.mean(_rate(x, eps))
    rc = ops.mean(_compressed_rate(x, Pi, eps))
    return r - rc, r, rc
