"""DINO's self-distillation loss (Caron et al. 2021, arXiv 2104.14294)."""
import numbers

from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_positive, f32


def _check_crops(name, crops):
    if not isinstance(crops, (list, tuple)) or not crops:
        raise ConfigError(f"{name} must be a non-empty list of (N, K) arrays, one per crop")
    for i, c in enumerate(crops):
        if len(tuple(c.shape)) != 2:
            raise ConfigError(f"{name}[{i}] must be an (N, K) array, got shape {tuple(c.shape)}")


def dino_loss(student_out, teacher_out, center, student_temp=0.1, teacher_temp=0.04):
    """L = mean over pairs (i, j), j ≠ i, of 1/N Σ_n Σ_k −P_t^i log P_s^j,

    P_t^i = softmax((t_i − c)/τ_t) (no gradient), P_s^j = softmax(s_j/τ_s).
    student_out: list of S (N, K) outputs, global crops first; teacher_out: list of T ≤ S
    (N, K) outputs, one per global crop; center: (K,) or (1, K). Teacher crop i is not paired
    with the student's view of the same crop, so there are T·S − T pairs (at least one).
    A temperature may be a tensor (a scheduled teacher_temp); only Python numbers are checked.
    """
    for name, t in (("student_temp", student_temp), ("teacher_temp", teacher_temp)):
        if isinstance(t, numbers.Number):
            check_positive(name, t)
    _check_crops("student_out", student_out)
    _check_crops("teacher_out", teacher_out)
    n_s, n_t = len(student_out), len(teacher_out)
    if n_t > n_s or n_s * n_t - n_t < 1:
        raise ConfigError(
            f"need at least one (teacher, other student crop) pair and no more teacher than "
            f"student crops; got {n_t} teacher and {n_s} student crops"
        )
    shape = tuple(teacher_out[0].shape)
    for name, crops in (("student_out", student_out), ("teacher_out", teacher_out)):
        for i, c in enumerate(crops):
            cs = tuple(c.shape)
            if any(a is not None and b is not None and a != b for a, b in zip(cs, shape)):
                raise ConfigError(f"{name}[{i}] has shape {cs}; all crops must be {shape}")
    cs, k = tuple(center.shape), shape[1]
    ok = len(cs) == 1 or (len(cs) == 2 and cs[0] == 1)
    if not ok or (None not in (k, cs[-1]) and cs[-1] != k):
        raise ConfigError(f"center must have shape ({k},) or (1, {k}), got {cs}")
    center = ops.reshape(f32(center), (1, -1))
    teacher_p = [ops.softmax((f32(t) - center) / teacher_temp, axis=-1) for t in teacher_out]
    teacher_p = [ops.stop_gradient(p) for p in teacher_p]
    student_logp = [ops.log_softmax(f32(s) / student_temp, axis=-1) for s in student_out]
    terms = [
        -ops.mean(ops.sum(p * logp, axis=-1))
        for i, p in enumerate(teacher_p)
        for j, logp in enumerate(student_logp)
        if j != i
    ]
    return ops.sum(ops.stack(terms)) / float(len(terms))
