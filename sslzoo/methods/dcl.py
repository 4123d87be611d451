"""DCL and DCLW (Yeh et al. 2022, arXiv 2110.06848): SimCLR with the positive decoupled."""
import keras

from sslzoo.losses import dcl_loss, dclw_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.replicas import all_gather


@keras.saving.register_keras_serializable(package="sslzoo")
class DCL(SSLMethod):
    """SimCLR's backbone and projector, and NT-Xent without the positive in the denominator:

        L = 1/(2N) Σ_i [ −w_i s_{i,pos(i)}/τ + log Σ_{k ∉ {i, pos(i)}} exp(s_ik/τ) ],

    s the cosine similarities of the 2N projections. w_i = 1 is DCL; with ``weighted`` it is
    DCLW's von Mises-Fisher weight w_i = 2 − N·softmax_n(s_n/σ) over the N positive pairs
    (``sslzoo.losses.dclw_loss``).

    Defaults: τ = 0.1 and σ = 0.5 (the paper's), and SimCLR's projector, augmentation and LARS
    recipe (the paper trains DCL in SimCLR's setting). Under a distribution strategy the
    negatives are the global batch's: the projections are gathered, and every replica
    computes the global loss.
    """

    method = "dcl"
    recipe = "simclr"
    defaults = {"temperature": 0.1, "weighted": False, "sigma": 0.5, "proj_hidden_dim": None,
                "proj_dim": 128, "proj_layers": 2}
    optim_defaults = {"optimizer": "lars", "learning_rate": 1.0, "weight_decay": 1e-6,
                      "scale": "linear"}

    def build_heads(self):
        self.bool_hparam("weighted")  # a clear error at build, not at the first step
        super().build_heads()

    def ssl_loss(self, out, n):
        z, h = out.proj, self.hparams
        if self.bool_hparam("weighted"):
            return dclw_loss(z[:n], z[n:], h["temperature"], h["sigma"], all_gather=all_gather)
        return dcl_loss(z[:n], z[n:], h["temperature"], all_gather=all_gather)
