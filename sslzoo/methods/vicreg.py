"""VICReg (Bardes, Ponce & LeCun 2021, arXiv 2105.04906)."""
import keras
from sslzoo.losses import vicreg_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.replicas import all_sum


@keras.saving.register_keras_serializable(package="sslzoo")
class VICReg(SSLMethod):
    """Invariance, variance and covariance terms on the expander outputs z1, z2:

        L = λ·1/(N·D)Σ‖z1 − z2‖² + μ·½Σ_v mean_d relu(1 − √(Var z_v,d + ε))
            + ν·Σ_v Σ_{i≠j} Cov(z_v)_ij² / D.

    Paper defaults: expander 3 × Linear(8192), BN and ReLU after the first two, λ = μ = 25,
    ν = 1, LARS with lr 0.2 × batch/256 and weight decay 1e-6, BYOL's augmentation.

    Under a distribution strategy all three terms are the global batch's (the row sums and
    covariance matrices are all-reduced): every replica computes the same loss, and the
    all-reduce's gradient sums the replicas' upstream gradients.
    """

    method = "vicreg"
    recipe = "byol"
    proj_layers = 3
    defaults = {"proj_hidden_dim": 8192, "proj_dim": 8192, "sim_weight": 25.0,
                "var_weight": 25.0, "cov_weight": 1.0}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.2, "weight_decay": 1e-6,
                      "scale": "linear"}

    def ssl_loss(self, out, n):
        z, h = out.proj, self.hparams
        return vicreg_loss(z[:n], z[n:], h["sim_weight"], h["var_weight"], h["cov_weight"],
                           all_sum=all_sum)
