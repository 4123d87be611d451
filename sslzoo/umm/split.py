"""Split a backbone into an early part f_e and a late part f_el at a block output."""
import keras

from sslzoo import backbones
from sslzoo.errors import ConfigError


def block_outputs(backbone):
    """Names of the backbone's block outputs, in forward order (the valid splits): a ResNet's
    residual blocks, a ViT's transformer blocks (``backbones.blocks_of``)."""
    return backbones.blocks_of(backbone)


def resolve_split(backbone, early):
    """The layer name ending the early part: a block-output name (for a ViT also its tap name,
    "block3" for "block3_out"), a number of blocks, or "auto": half the depth, the second of
    the backbone's four default taps ("stage2" on a ResNet, "block6" on a 12-block ViT)."""
    names = block_outputs(backbone)
    if early == "auto":
        early = backbones.default_taps(backbone)[1]
    if isinstance(early, str) and early.isdigit():
        early = int(early)
    if isinstance(early, str) and f"{early}_out" in names:
        early = f"{early}_out"
    if isinstance(early, int) and not isinstance(early, bool):
        if not 1 <= early < len(names):
            raise ConfigError(f"UMM early={early} blocks: {backbone.name} has {len(names)} "
                              f"blocks, so the early part takes 1 to {len(names) - 1} of them "
                              "(the rest must stay trainable)")
        return names[early - 1]
    if early not in names:
        raise ConfigError(f"UMM early split {early!r} is not a block output of "
                          f"{backbone.name}; valid: {', '.join(names)} or a number of blocks")
    if early == names[-1]:
        raise ConfigError(f"UMM early split {early!r} is the last block: no trainable late "
                          f"layers would remain; choose one of {', '.join(names[:-1])}")
    return early


def split_encoders(backbone, split, taps):
    """(early, late) functional models sharing the backbone's variables.

    ``early``: images → {split, early taps}; ``late``: split map → {late taps, "pooled"}.
    """
    order = [layer.name for layer in backbone.layers]
    cut = order.index(split)
    early_taps = [t for t in taps if t in order and order.index(t) <= cut]
    late_taps = [t for t in taps if t in order and order.index(t) > cut and t != "pooled"]
    mid = backbone.get_layer(split).output
    early = keras.Model(backbone.input, {t: backbone.get_layer(t).output
                                         for t in {split, *early_taps}}, name="umm_early")
    late = keras.Model(mid, {"pooled": backbone.output,
                             **{t: backbone.get_layer(t).output for t in late_taps}},
                       name="umm_late")
    return early, late
