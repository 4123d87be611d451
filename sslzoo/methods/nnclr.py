"""NNCLR (Dwibedi et al. 2021, arXiv 2104.14548): nearest neighbours from a support set."""
import keras
from keras import ops

from sslzoo.losses import nearest_neighbours, nnclr_loss
from sslzoo.losses.common import l2_normalize
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.heads import mlp
from sslzoo.methods.state import Queue
from sslzoo.utils.replicas import all_gather


@keras.saving.register_keras_serializable(package="sslzoo")
class NNCLR(SSLMethod):
    """Projections z_v = g(f(x_v)), predictions p_v = h(z_v), and a support set Q (a queue of
    past view-1 projections). The nearest neighbour of each projection in Q is the anchor of
    the other view's prediction (the paper's eq. 3, symmetrised):

        L = ½ [ℓ(p2, NN(z1, Q)) + ℓ(p1, NN(z2, Q))],
        ℓ(p, nn) = 1/N Σ_i −log exp(n̂_i·p̂_i/τ) / Σ_k exp(n̂_i·p̂_k/τ),

    NN(z, Q) the L2-normalised row of Q most similar to z, without gradient. After each step
    the batch's view-1 projections (L2-normalised) replace the oldest rows of Q, which starts
    as random unit vectors.

    Paper defaults: projector d → 2048 → 2048 → 256 (BN and ReLU after the hidden layers, BN
    on the output), predictor 256 → 4096 → 256, τ = 0.1, a support set of 98,304, LARS with lr
    0.3 × batch/256 (4.8 at batch 4096) and weight decay 1e-6, BYOL's augmentation. On a small
    dataset lower ``queue_size``: a queue longer than an epoch holds stale projections.

    Under a distribution strategy the predictions and neighbours of the global batch are
    gathered (every replica computes the global loss), and the queue takes the global batch.
    """

    method = "nnclr"
    recipe = "byol"
    defaults = {"temperature": 0.1, "proj_hidden_dim": 2048, "proj_dim": 256,
                "pred_hidden_dim": 4096, "queue_size": 98304}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.3, "weight_decay": 1e-6,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        hidden = h["proj_hidden_dim"] or self.feature_dim
        self.projector = mlp((hidden, hidden, h["proj_dim"]), "projector", last_bn=True,
                             in_dim=self.feature_dim)
        self.predictor = mlp((h["pred_hidden_dim"], h["proj_dim"]), "predictor",
                             in_dim=h["proj_dim"])
        self.queue = Queue(h["queue_size"], h["proj_dim"], random=True, name="queue")

    def ssl_loss(self, out, n):
        z = out.proj
        p = self.predictor(z, training=True)
        out.state["support"] = z[:n]
        nn1, nn2 = (nearest_neighbours(z[:n], self.queue.values),
                    nearest_neighbours(z[n:], self.queue.values))
        t = self.hparams["temperature"]
        return 0.5 * (nnclr_loss(all_gather(p[n:]), all_gather(nn1), t) +
                      nnclr_loss(all_gather(p[:n]), all_gather(nn2), t))

    def after_update(self, out):
        z = out.needs("support", self.method)
        self.queue.push(l2_normalize(all_gather(ops.stop_gradient(z))))
