"""SSL losses: pure functions over keras.ops; arrays in, a float32 scalar out."""
from sslzoo.losses.barlow_twins import barlow_twins_loss
from sslzoo.losses.byol import byol_loss
from sslzoo.losses.dcl import dcl_loss, dclw_loss
from sslzoo.losses.deepcluster import deepcluster_v2_loss, spherical_kmeans
from sslzoo.losses.dino import dino_loss
from sslzoo.losses.emp_ssl import emp_ssl_loss
from sslzoo.losses.mae import mae_loss, patchify
from sslzoo.losses.mmcr import mmcr_loss
from sslzoo.losses.moco import moco_loss
from sslzoo.losses.mocov3 import mocov3_loss
from sslzoo.losses.nnclr import nearest_neighbours, nnclr_loss
from sslzoo.losses.simclr import simclr_loss
from sslzoo.losses.simsiam import simsiam_loss
from sslzoo.losses.swav import sinkhorn_knopp, swav_loss
from sslzoo.losses.tico import tico_loss
from sslzoo.losses.vicreg import vicreg_loss, vicreg_terms
from sslzoo.losses.wmse import cholesky_whiten, wmse_loss

__all__ = [
    "simclr_loss",
    "barlow_twins_loss",
    "byol_loss",
    "dino_loss",
    "moco_loss",
    "mocov3_loss",
    "simsiam_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "vicreg_loss",
    "vicreg_terms",
    "nnclr_loss",
    "nearest_neighbours",
    "dcl_loss",
    "dclw_loss",
    "tico_loss",
    "wmse_loss",
    "cholesky_whiten",
    "deepcluster_v2_loss",
    "spherical_kmeans",
    "mmcr_loss",
    "emp_ssl_loss",
    "mae_loss",
    "patchify",
]
