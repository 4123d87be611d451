"""MoCo v2 (Chen, Fan, Girshick & He 2020, arXiv 2003.04297; MoCo: He et al. 2019, 1911.05722)."""
import keras

from sslzoo.losses import moco_loss
from sslzoo.losses.common import l2_normalize
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.heads import mlp
from sslzoo.methods.state import Queue, all_gather


@keras.saving.register_keras_serializable(package="sslzoo")
class MoCoV2(EMAMethod):
    """Query q = g_θ(f_θ(x1)), key k = g_ξ(f_ξ(x2)) from the momentum encoder, and a queue of
    the K most recent keys as negatives (InfoNCE):

        L = −1/N Σ_n log exp(q_n·k_n/τ) / (exp(q_n·k_n/τ) + Σ_j exp(q_n·queue_j/τ)),

    q, k L2-normalised; ξ ← m ξ + (1 − m) θ with a constant m = 0.999; after each step the
    batch's keys replace the oldest ones (the queue starts as random unit vectors).

    Paper defaults: MLP head d → 2048 → 128 (ReLU, no BN), τ = 0.2, K = 65536, SGD (momentum
    0.9) with lr 0.03 × batch/256 and weight decay 1e-4, SimCLR's augmentation with blur.
    Shuffling BN (which needs several devices) is not implemented. On a small dataset lower
    ``queue_size`` (e.g. 4096): a queue larger than the data holds stale keys of the positives.
    """

    method = "mocov2"
    recipe = "simclr"
    defaults = {"temperature": 0.2, "proj_hidden_dim": 2048, "proj_dim": 128,
                "queue_size": 65536, "momentum": 0.999, "momentum_schedule": "constant"}
    optim_defaults = {"optimizer": "sgd", "learning_rate": 0.03, "weight_decay": 1e-4,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        self.projector = mlp((h["proj_hidden_dim"] or self.feature_dim, h["proj_dim"]),
                             "projector", hidden_bn=False, in_dim=self.feature_dim)
        self.queue = Queue(h["queue_size"], h["proj_dim"], random=True, name="queue")
        self.build_teacher()

    def ssl_loss(self, out, n):
        keys = self.teacher(out.images[n:], out.cache)
        out.state["keys"] = keys
        return moco_loss(out.proj[:n], keys, self.queue.values, self.hparams["temperature"])

    def after_update(self, out):
        super().after_update(out)
        self.queue.push(l2_normalize(all_gather(out.needs("keys", self.method))))
