"""Masked autoencoders' reconstruction loss (He et al. 2022, arXiv 2111.06377), with the
per-patch target normalisation of the authors' code (github.com/facebookresearch/mae,
``models_mae.py``, ``forward_loss`` with ``--norm_pix_loss``)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import f32
from sslzoo.utils.config import is_int

NORM_PIX_EPS = 1e-6  # added to each patch's variance before the square root


def patchify(images, p):
    """(N, H, W, C) images → (N, L, p²·C) patches, L = (H/p)·(W/p).

    Patches run row-major over the grid (the order of a ViT's patch tokens: its patch-embedding
    convolution's output, flattened); inside a patch the values run over its rows, then its
    columns, then the channels. H and W must be multiples of ``p``.
    """
    if not is_int(p, lower=1):
        raise ConfigError(f"patchify: the patch size p must be a positive int, got {p!r}")
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ConfigError(f"patchify: images must be (N, H, W, C), got shape {shape}")
    _, h, w, c = shape
    if h is None or w is None or c is None or h % p or w % p:
        raise ConfigError(f"patchify: the image sides must be known multiples of the patch "
                          f"size {p}, got shape {shape}")
    x = ops.reshape(images, (-1, h // p, p, w // p, p, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (N, h, w, p, p, C)
    return ops.reshape(x, (-1, (h // p) * (w // p), p * p * c))


def mae_loss(pred, target, mask, norm_pix=True):
    """L = Σ_{n,l} m_nl · mean_k (pred_nlk − t_nlk)² / Σ_{n,l} m_nl.

    pred and target: (N, L, K) patches (``patchify``: K = p²·3); mask: (N, L), 1 for a masked
    patch (the only ones the loss counts) and 0 for a visible one. With ``norm_pix`` each target
    patch is standardised by its own statistics over its K values,
    t = (x − mean(x)) / sqrt(var(x) + 1e-6), var with K − 1 in the denominator (the official
    code's ``Tensor.var``, unbiased by default). Computed in float32; the gradient flows through
    ``pred`` only. 0 when no patch is masked.
    """
    if norm_pix not in (True, False):
        raise ConfigError(f"mae_loss: norm_pix must be a boolean (or 0 / 1), got {norm_pix!r}")
    sp, st, sm = tuple(pred.shape), tuple(target.shape), tuple(mask.shape)
    if len(sp) != 3 or len(st) != 3:
        raise ConfigError(f"mae_loss: pred and target must be (N, L, K) patches, got shapes "
                          f"{sp} and {st}")
    if any(a is not None and b is not None and a != b for a, b in zip(sp, st)):
        raise ConfigError(f"mae_loss: pred and target must have the same shape, got {sp} and "
                          f"{st}")
    if len(sm) != 2 or any(a is not None and b is not None and a != b
                           for a, b in zip(sm, sp[:2])):
        raise ConfigError(f"mae_loss: mask must be (N, L) = {sp[:2]} (1 = masked patch), got "
                          f"shape {sm}")
    if norm_pix and st[2] is not None and st[2] < 2:
        raise ConfigError("mae_loss: norm_pix needs at least 2 values per patch, got K = "
                          f"{st[2]}")
    pred, target, mask = f32(pred, ops.stop_gradient(target), ops.stop_gradient(mask))
    if norm_pix:
        k = ops.cast(ops.shape(target)[-1], "float32")
        mean = ops.mean(target, axis=-1, keepdims=True)
        var = ops.sum(ops.square(target - mean), axis=-1, keepdims=True) / (k - 1.0)
        target = (target - mean) / ops.sqrt(var + NORM_PIX_EPS)
    per_patch = ops.mean(ops.square(pred - target), axis=-1)
    return ops.sum(per_patch * mask) / ops.maximum(ops.sum(mask), 1.0)
