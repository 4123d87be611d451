"""Backbones: `build(name, image_size, stem, sync_bn, **options)` -> functional keras.Model.

Models take raw pixels in [0, 255] and return pooled features (N, D). ResNets
(`sslzoo.backbones.resnet`) are tapped at "stage1" … "stage4", ViTs (`sslzoo.backbones.vit`)
at "block1" … "block<depth>" (the blocks' CLS tokens); `default_taps` gives a model's default
taps, `blocks_of` its block outputs in forward order (where a model can be cut in two).
"""
import re

from sslzoo.backbones import resnet, vit
from sslzoo.backbones.resnet import STAGES
from sslzoo.errors import ConfigError, unknown_choice

_RESNET_BLOCK_OUT = re.compile(r"^stage\d+(_block\d+_out)?$")
_VIT_BLOCK_OUT = re.compile(r"^block\d+_out$")
_VIT_TAP = re.compile(r"^block(\d+)$")


def available():
    """Names accepted by `build`."""
    return sorted(resnet.available() + vit.available())


def build(name, image_size=32, stem="auto", sync_bn=False, **options):
    """Backbone `name` (see `available`) at `image_size` px.

    ResNets take `stem` and `sync_bn` (see `sslzoo.backbones.resnet.build`). ViTs take the
    options `patch_size` and `pool` (see `sslzoo.backbones.vit.build`); they have no stem
    (only ``stem="auto"`` is accepted) and no BatchNorm (`sync_bn` is ignored). An option
    given as None is not given.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name in vit.available():
        if stem != "auto":
            raise ConfigError(f"{name} is a Vision Transformer and has no stem; got "
                              f"stem={stem!r}, leave it 'auto' (set patch_size instead)")
        bad = set(options) - {"patch_size", "pool"}
        if bad:
            raise ConfigError(f"{name} has no option(s) {sorted(bad)}; valid: patch_size, pool")
        return vit.build(name, image_size, **options)
    if name not in resnet.available():
        raise unknown_choice("backbone", name, available())
    if options:
        raise ConfigError(f"{name} has no option(s) {sorted(options)}; patch_size and pool "
                          f"are ViT options ({', '.join(vit.available())})")
    return resnet.build(name, image_size, stem=stem, sync_bn=sync_bn)


def _vit_depth(model):
    """The number of blocks of a ViT model (0 for another model)."""
    return sum(1 for layer in model.layers if _VIT_TAP.match(layer.name))


def default_taps(name_or_model):
    """The default CRR taps of a backbone (a name or a built model): "stage1" … "stage4" for a
    ResNet, the blocks at every quarter of the depth for a ViT ("block3", "block6", "block9",
    "block12" for 12 blocks)."""
    if isinstance(name_or_model, str):
        if name_or_model in vit.available():
            return vit.quarter_taps(vit.depth_of(name_or_model))
        if name_or_model not in resnet.available():
            raise unknown_choice("backbone", name_or_model, available())
        return STAGES[:4]
    depth = _vit_depth(name_or_model)
    return vit.quarter_taps(depth) if depth else STAGES[:4]


def blocks_of(model):
    """Names of the model's block outputs, in forward order: the tensors the rest of the
    network consumes, so the valid points to cut it ("the first k blocks" end at the k-th).
    ResNets: every residual block's output ("stage1_block1_out", …, "stage1", …); ViTs:
    "block1_out" … "block<depth>_out" (the tokens, N × T × D; the tap "block<i>" is their CLS
    token)."""
    pattern = _VIT_BLOCK_OUT if _vit_depth(model) else _RESNET_BLOCK_OUT
    return [layer.name for layer in model.layers if pattern.match(layer.name)]


__all__ = ["STAGES", "available", "blocks_of", "build", "default_taps"]
