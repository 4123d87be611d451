"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny 2021, arXiv 2103.03230)."""
import keras

from sslzoo.losses import barlow_twins_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.replicas import all_sum


@keras.saving.register_keras_serializable(package="sslzoo")
class BarlowTwins(SSLMethod):
    """The cross-correlation C of the two views' batch-standardised projections is driven to
    the identity:

        L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²,   C = z̃1ᵀ z̃2 / N.

    Paper defaults: projector 3 × Linear(8192), BN and ReLU after the first two, λ = 5.1e-3,
    LARS with lr 0.2 × batch/256 and weight decay 1.5e-6 (the paper's separate bias/BN lr
    0.0048 is not used; LARS exempts them from adaptation and decay), BYOL's augmentation.

    Under a distribution strategy the standardisation and C are the global batch's (their
    sums are all-reduced, as in the official code's ``all_reduce(c)``): every replica computes
    the same loss, and the all-reduce's gradient sums the replicas' upstream gradients.
    """

    method = "barlow_twins"
    recipe = "byol"
    proj_layers = 3
    defaults = {"proj_hidden_dim": 8192, "proj_dim": 8192, "lambda_": 0.0051}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.2, "weight_decay": 1.5e-6,
                      "scale": "linear"}

    def ssl_loss(self, out, n):
        z = out.proj
        return barlow_twins_loss(z[:n], z[n:], lambda_=self.hparams["lambda_"], all_sum=all_sum)
