"""W-MSE (Ermolov, Siarohin, Sangineto & Sebe 2021, arXiv 2007.06346), two views."""
import keras
import tensorflow as tf

from sslzoo.errors import ConfigError
from sslzoo.losses import wmse_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.config import is_int
from sslzoo.utils.replicas import all_gather, num_replicas
from sslzoo.utils.seeds import seed_for


@keras.saving.register_keras_serializable(package="sslzoo")
class WMSE(SSLMethod):
    """The batch is cut into sub-batches of ``w_size`` rows; each view's sub-batch of
    projections is whitened (y = L⁻¹(z − z̄), L Lᵀ = (1 − ε)Σ + εI), and

        L = 1/N Σ_n ‖ŷ1_n − ŷ2_n‖²,  ŷ = y/‖y‖.

    The rows are permuted before the cut by a permutation drawn from (``seed``, step), so a
    resumed run cuts the same sub-batches (``sslzoo.losses.wmse_loss``).

    Defaults (the official code's CIFAR setting): projector d → 1024 → 64 (BN, ReLU),
    w_size 128, ε = 0, one whitening iteration, Adam at lr 3e-3 with weight decay 1e-6 (AdamW
    here, with that decay decoupled), no lr scaling, SimCLR's augmentation. The global batch
    must be a multiple of ``w_size``, and ``w_size`` must exceed ``proj_dim`` when ε = 0.
    Under a distribution strategy the global batch is gathered and cut, as on one device.
    """

    method = "wmse"
    recipe = "simclr"
    defaults = {"proj_hidden_dim": 1024, "proj_dim": 64, "w_size": 128, "w_eps": 0.0}
    optim_defaults = {"optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-6,
                      "scale": "none"}

    def build_heads(self):
        h = self.hparams
        if not is_int(h["w_size"], 2):
            raise ConfigError(f"wmse hparam w_size must be an integer >= 2, got {h['w_size']!r}")
        if not h["w_eps"] and h["w_size"] <= h["proj_dim"]:
            raise ConfigError(f"wmse hparam w_size={h['w_size']} must exceed proj_dim="
                              f"{h['proj_dim']} when w_eps=0 (a sub-batch's covariance has "
                              "rank <= w_size - 1); raise w_size or set w_eps > 0")
        super().build_heads()

    def ssl_loss(self, out, n):
        z, h = out.proj, self.hparams
        rows = n * num_replicas()  # the global batch the loss gathers
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(rows), seed_for(self.seed, "wmse", self.step()))
        return wmse_loss(z[:n], z[n:], h["w_size"], h["w_eps"], all_gather=all_gather,
                         permutation=perm)
