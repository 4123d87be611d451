"""BYOL (Grill et al. 2020, arXiv 2006.07733)."""
import keras

from sslzoo.losses import byol_loss
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.heads import mlp


@keras.saving.register_keras_serializable(package="sslzoo")
class BYOL(EMAMethod):
    """Online predictions p_v = q_θ(g_θ(f_θ(x_v))) regress the target projections
    z'_v = g_ξ(f_ξ(x_v)) of the other view:

        L = ‖p̄1 − z̄'2‖² + ‖p̄2 − z̄'1‖²  (x̄ = x/‖x‖, averaged over the batch),

    ξ ← τ ξ + (1 − τ) θ, τ = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2 with τ_base = 0.996.

    Paper defaults: projector and predictor Linear(4096)–BN–ReLU–Linear(256), LARS with lr
    0.2 × batch/256 and weight decay 1.5e-6, the asymmetric BYOL augmentation.
    """

    method = "byol"
    recipe = "byol"
    defaults = {"proj_hidden_dim": 4096, "proj_dim": 256, "pred_hidden_dim": 4096,
                "momentum": 0.996, "momentum_schedule": "cosine"}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.2, "weight_decay": 1.5e-6,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        self.projector = mlp((h["proj_hidden_dim"] or self.feature_dim, h["proj_dim"]),
                             "projector", in_dim=self.feature_dim)
        self.predictor = mlp((h["pred_hidden_dim"], h["proj_dim"]), "predictor",
                             in_dim=h["proj_dim"])
        self.build_teacher()

    def ssl_loss(self, out, n):
        p = self.predictor(out.proj, training=True)
        z = self.teacher(out.images, out.cache)
        return byol_loss(p[:n], z[n:]) + byol_loss(p[n:], z[:n])
