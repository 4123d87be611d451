"""W-MSE: the MSE of whitened embeddings (Ermolov et al. 2021, arXiv 2007.06346), with the
whitening of the authors' code (github.com/htdt/self-supervised, methods/whitening.py)."""
import keras
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import batch_statistics_inputs, f32, l2_normalize
from sslzoo.utils.config import is_int


def _check_eps(eps):
    if not 0 <= eps < 1:
        raise ConfigError(f"eps must be in [0, 1) (the covariance shrinkage), got {eps!r}")


def cholesky_whiten(x, eps=0.0):
    """Whiten the rows of each (w, D) sub-batch of x (..., w, D): y = W (x − x̄), W = L⁻¹,

    where L Lᵀ = (1 − eps)·Σ + eps·I is the Cholesky factor of the sub-batch's unbiased
    covariance Σ = (x − x̄)ᵀ(x − x̄) / (w − 1), shrunk towards I as in the official code. With
    eps = 0 the whitened rows have covariance exactly I (w > D is then needed, for Σ to be
    positive definite).
    """
    _check_eps(eps)
    if len(tuple(x.shape)) < 2:
        raise ConfigError(f"x must be a (..., w, D) array of sub-batches, got shape "
                          f"{tuple(x.shape)}")
    x = f32(x)
    w, d = ops.shape(x)[-2], ops.shape(x)[-1]
    xc = x - ops.mean(x, axis=-2, keepdims=True)
    cov = ops.matmul(ops.swapaxes(xc, -1, -2), xc) / (ops.cast(w, "float32") - 1.0)
    cov = (1.0 - eps) * cov + eps * ops.eye(d, dtype="float32")
    # L⁻¹ xcᵀ by a triangular solve rather than by forming the inverse.
    return ops.swapaxes(ops.solve_triangular(ops.cholesky(cov), ops.swapaxes(xc, -1, -2),
                                             lower=True), -1, -2)


def wmse_loss(z1, z2, w_size=128, eps=0.0, seed=None, all_gather=None, permutation=None):
    """W-MSE for two views, z1, z2: (N, D).

    The batch is cut into N / w_size sub-batches of w_size rows (after permuting the rows with
    ``keras.random.shuffle(ops.arange(N), seed)`` when ``seed`` is given: an int, or a
    ``keras.random.SeedGenerator`` for a new permutation each call; the same one for both
    views). Each view's sub-batch is whitened on its own (cholesky_whiten), and

        L = 1/N Σ_n ‖ŷ1_n − ŷ2_n‖² = 2 − 2/N Σ_n ŷ1_n·ŷ2_n,

    with ŷ the L2-normalised whitened rows (the official code's norm_mse_loss). Defaults
    w_size = 128, eps = 0 and one whitening iteration are the official code's (--w_size, --w_eps,
    --w_iter). N must be a multiple of w_size, and with eps = 0, w_size > D.

    ``permutation`` (an int (N,) tensor, N the gathered rows) gives that permutation instead
    of drawing one from ``seed`` (a method derives it from its run seed and the step, so that
    a resumed run cuts the same sub-batches).

    Across replicas: pass ``all_gather=sslzoo.utils.replicas.all_gather`` (and the same ``seed``
    or ``permutation`` on every replica). The views are then gathered, the global batch is cut into sub-batches
    and every replica returns the global batch's loss; the gradient flows back to its own rows.
    """
    if not is_int(w_size, 2):
        raise ConfigError(f"w_size must be an integer >= 2, got {w_size!r}")
    _check_eps(eps)
    if not (seed is None or is_int(seed, 0) or isinstance(seed, keras.random.SeedGenerator)):
        raise ConfigError(f"seed must be None, an integer >= 0 or a keras.random.SeedGenerator, "
                          f"got {seed!r}")
    z1, z2, gather = batch_statistics_inputs(z1, z2, "wmse_loss", all_gather)
    n, d = tuple(z1.shape)
    if all_gather is None and n is not None and n % w_size:
        raise ConfigError(f"the batch N={n} is not a multiple of w_size={w_size}; use a batch "
                          "size divisible by w_size (or w_size=N)")
    if eps == 0 and d is not None and w_size <= d:
        raise ConfigError(f"w_size={w_size} must exceed the embedding dimension D={d}: a "
                          f"sub-batch's covariance has rank <= w_size - 1; raise w_size or set "
                          "eps > 0")
    if seed is not None and permutation is not None:
        raise ConfigError("give wmse_loss a seed or a permutation, not both")
    z1, z2 = gather(z1), gather(z2)
    if seed is not None:
        permutation = keras.random.shuffle(ops.arange(ops.shape(z1)[0], dtype="int32"),
                                           seed=seed)
    if permutation is not None:
        # A permutation matrix, not a gather: a gather's sparse gradient cannot flow back
        # through the cross-replica all_gather.
        p = ops.one_hot(permutation, ops.shape(z1)[0], dtype="float32")
        z1, z2 = ops.matmul(p, z1), ops.matmul(p, z2)
    y1, y2 = (cholesky_whiten(ops.reshape(z, (-1, w_size, ops.shape(z)[-1])), eps)
              for z in (z1, z2))
    cos = ops.sum(l2_normalize(y1) * l2_normalize(y2), axis=-1)
    return 2.0 - 2.0 * ops.mean(cos)
