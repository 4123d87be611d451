"""MMCR: Maximum Manifold Capacity Representations (Yerxa et al. 2023, arXiv 2303.03307)."""
import keras

from sslzoo.losses import mmcr_loss
from sslzoo.methods.heads import mlp
from sslzoo.methods.many_views import ManyViewMethod
from sslzoo.utils.replicas import all_gather


@keras.saving.register_keras_serializable(package="sslzoo")
class MMCR(ManyViewMethod):
    """q views of each image; with Z_i (q, d) image i's L2-normalised projections and C (n, d)
    their centroids c_i = mean_j Z_i,j, the nuclear norm of C is maximised:

        L = −‖C‖_* + λ · 1/n Σ_i ‖Z_i‖_*    (‖·‖_* the sum of singular values).

    Views: ``views`` = q ≥ 2, all of one recipe at the image size (``ManyViewMethod``).

    Defaults (the official CIFAR code): projector d → 512 → 128 (BN, ReLU, no biases), λ = 0,
    Adam at lr 1e-3 with weight decay 1e-6 (AdamW here, the decay decoupled), no lr scaling,
    SimCLR's augmentation. The official run takes q = 40 views of 32 images
    (``--hparams=views=40 --batch_size=32``); the default here is the zoo's two views, so
    that a step costs what the other methods' steps cost. Under a distribution strategy the
    views are gathered and every replica computes the global batch's loss.
    """

    method = "mmcr"
    recipe = "simclr"
    defaults = {"proj_hidden_dim": 512, "proj_dim": 128, "lmda": 0.0, "views": 2}
    optim_defaults = {"optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-6,
                      "scale": "none"}

    def build_heads(self):
        h = self.hparams
        self.projector = mlp((h["proj_hidden_dim"] or self.feature_dim, h["proj_dim"]),
                             "projector", in_dim=self.feature_dim, last_bias=False)

    def ssl_loss(self, out, n):
        return mmcr_loss(self.stacked_views(out, n), self.hparams["lmda"], all_gather=all_gather)
