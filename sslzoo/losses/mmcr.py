"""Maximum Manifold Capacity Representations' loss (Yerxa et al. 2023, arXiv 2303.03307), with
the normalisation of the authors' code (github.com/ThomasYerxa/mmcr, loss_mmcr.py)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import view_stack_inputs


def _nuclear_norm(x):
    """Σ of the singular values of each trailing (a, b) matrix of x, summed."""
    return ops.sum(ops.svd(x, full_matrices=False, compute_uv=False))


def mmcr_loss(z, lmda=0.0, all_gather=None):
    """L = −‖C‖_* + λ · 1/n Σ_i ‖Z_i‖_*,

    z: (n, q, d), q ≥ 2 views of each of n ≥ 2 images; each view is L2-normalised here. Z_i
    (q, d) holds image i's views, C (n, d) the centroids c_i = mean of Z_i's rows, and ‖·‖_* is
    the nuclear norm (the sum of singular values). λ ≥ 0; λ = 0 (the official default) keeps
    only the centroid term, and the per-image SVDs are then skipped.

    Across replicas: pass ``all_gather=sslzoo.utils.replicas.all_gather``. z is then this
    replica's images; as in the official code the views are gathered, every replica returns
    the global batch's loss (n counts the global images), and the gradient flows back to each
    replica's own rows.
    """
    if not lmda >= 0:
        raise ConfigError(f"lmda must be >= 0, got {lmda!r}")
    u = view_stack_inputs(z, "mmcr_loss", "views", all_gather)
    loss = -_nuclear_norm(ops.mean(u, axis=1))
    if lmda:
        loss = loss + lmda * _nuclear_norm(u) / ops.cast(ops.shape(u)[0], "float32")
    return loss
