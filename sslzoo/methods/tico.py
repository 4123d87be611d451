"""TiCo (Zhu, Liu, Li, Duan & Hu 2022, arXiv 2206.10698)."""
import keras

from sslzoo.losses import tico_loss
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.state import state_weight
from sslzoo.utils.replicas import all_sum


@keras.saving.register_keras_serializable(package="sslzoo")
class TiCo(EMAMethod):
    """Transformation invariance and covariance contrast between the online projection z1 of
    view 1 and the momentum encoder's z2 of view 2 (ẑ the L2-normalised rows):

        C_t = β·C_{t−1} + (1 − β)·ẑ1ᵀẑ1/N,
        L = −1/N Σ_i ẑ1_i·ẑ2_i + ρ·1/N Σ_i ẑ1_i C_t ẑ1_iᵀ,

    C a running (D, D) covariance kept on the model (checkpointed), updated after the step;
    ξ ← τ_k ξ + (1 − τ_k) θ on BYOL's cosine schedule from 0.99 (``sslzoo.losses.tico_loss``).

    Defaults: β = 0.9, ρ = 8 (the paper's recommended value; the public implementation's
    default is 20), projector d → 4096 → 256 (BN, ReLU), momentum 0.99, BYOL's augmentation
    and LARS recipe (lr 0.2 × batch/256, weight decay 1.5e-6; the public code's CIFAR demo
    uses plain SGD at 0.06). One direction, as in the public code. Under a distribution
    strategy C, the agreement and the covariance term are the global batch's (all-reduced).
    """

    method = "tico"
    recipe = "byol"
    defaults = {"proj_hidden_dim": 4096, "proj_dim": 256, "beta": 0.9, "rho": 8.0,
                "momentum": 0.99, "momentum_schedule": "cosine"}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.2, "weight_decay": 1.5e-6,
                      "scale": "linear"}

    def build_heads(self):
        super().build_heads()  # the two-layer projector
        self.covariance = state_weight(self, "tico_covariance", (self.hparams["proj_dim"],) * 2)
        self.build_teacher()

    def ssl_loss(self, out, n):
        h = self.hparams
        z2 = self.teacher(out.images[n:], out.cache)
        loss, out.state["covariance"] = tico_loss(out.proj[:n], z2, self.covariance,
                                                  h["beta"], h["rho"], all_sum=all_sum)
        return loss

    def after_update(self, out):
        super().after_update(out)
        self.covariance.assign(out.needs("covariance", self.method))
