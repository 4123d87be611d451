"""Method registry: ``available()`` lists the names, ``build`` makes an untrained model."""
from sslzoo import backbones
from sslzoo.errors import unknown_choice
from sslzoo.methods.barlow_twins import BarlowTwins
from sslzoo.methods.base import DEFAULT_TAPS, SSLMethod
from sslzoo.methods.byol import BYOL
from sslzoo.methods.dcl import DCL
from sslzoo.methods.deepcluster import DeepClusterV2
from sslzoo.methods.dino import DINO
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.emp_ssl import EMPSSL
from sslzoo.methods.forward import Forward
from sslzoo.methods.mae import MAE
from sslzoo.methods.mmcr import MMCR
from sslzoo.methods.mocov2 import MoCoV2
from sslzoo.methods.mocov3 import MoCoV3
from sslzoo.methods.nnclr import NNCLR
from sslzoo.methods.protocol import TrainableModel
from sslzoo.methods.simclr import SimCLR
from sslzoo.methods.simsiam import SimSiam
from sslzoo.methods.swav import SwAV
from sslzoo.methods.tico import TiCo
from sslzoo.methods.vicreg import VICReg
from sslzoo.methods.wmse import WMSE

METHODS = {m.method: m for m in (SimCLR, MoCoV2, MoCoV3, BYOL, SimSiam, BarlowTwins, VICReg,
                                 SwAV, DINO, NNCLR, DCL, TiCo, WMSE, MMCR, EMPSSL,
                                 DeepClusterV2, MAE)}


def available():
    """Names of the SSL methods in the zoo."""
    return sorted(METHODS)


def get(name):
    if name not in METHODS:
        raise unknown_choice("method", name, METHODS)
    return METHODS[name]


def build(method="simclr", backbone="resnet_tiny", image_size=32, num_classes=None,
          augment_in_step=False, taps=None, crr_every=1, stem="auto", sync_bn=False,
          augment=None, seed=0, **hparams):
    """An untrained SSL model: ``build("simclr", "resnet18", image_size=32, temperature=0.2)``.

    ``hparams`` override the method's paper defaults (``METHODS[name].defaults``). ``taps``
    are the layers whose ΔR is monitored every ``crr_every`` steps (default: a ResNet's four
    stages or a ViT's blocks at every quarter of its depth, and the projector; ``crr_every=0`` turns CRR monitoring off). ``augment`` overrides fields
    of the method's augmentation recipe (a dict, or text as ``--augment`` takes it); ``seed``
    seeds the views made in the train step (``augment_in_step``).
    """
    cls = get(method)
    net = backbone if not isinstance(backbone, str) else backbones.build(
        backbone, image_size=image_size, stem=stem, sync_bn=sync_bn)
    return cls(net, num_classes=num_classes, image_size=image_size,
               augment_in_step=augment_in_step,
               taps=taps, crr_every=crr_every,
               augment=augment, seed=seed, **hparams)


def set_training_length(model, total_steps, steps_per_epoch=0):
    """Give a model's schedules (EMA momentum, warm-ups, epochs-based switches) the run length
    in optimizer steps; ``model`` may be wrapped in UMM. Call before ``fit``."""
    model.ssl_model.set_training_length(total_steps, steps_per_epoch)


__all__ = ["METHODS", "EMAMethod", "Forward", "SSLMethod", "TrainableModel", "available",
           "build", "get", "set_training_length"]
