"""SwAV (Caron et al. 2020, arXiv 2006.09882), two crops (multi-crop is not yet supported)."""
import keras
from keras import ops

from sslzoo.losses import sinkhorn_knopp, swav_loss
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.losses.swav import replica_rows, swapped_prediction
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.heads import Prototypes, mlp
from sslzoo.methods.state import Queue
from sslzoo.utils.replicas import all_gather, row_offset


@keras.saving.register_keras_serializable(package="sslzoo")
class SwAV(SSLMethod):
    """Swapped prediction of online cluster codes. With z_v = g(f(x_v))/‖·‖, prototypes C
    (unit columns, renormalised after every step) and scores s_v = z_v·C,

        L = −½ [1/N Σ_n Σ_k q2_nk log p1_nk + 1/N Σ_n Σ_k q1_nk log p2_nk],
        p_v = softmax(s_v/τ),  q_v = Sinkhorn-Knopp(s_v; ε, 3 iterations) (no gradient).

    With ``queue_length`` > 0 each view keeps a queue of its last embeddings; from epoch
    ``queue_start_epoch`` on (once the queue is full) the codes are computed on
    [queue·C; s_v] so that equipartition holds over more samples than the batch. The prototypes
    get no gradient during the first ``freeze_prototypes_epochs``. Schedules in epochs need
    ``set_training_length``; without it the queue is used once full and nothing is frozen.

    Paper defaults: projector d → 2048 → 128 (BN, ReLU), 3000 prototypes, τ = 0.1, ε = 0.05,
    LARS with lr 4.8 at batch 4096 (0.3 × batch/256) and weight decay 1e-6, no queue (the
    paper's batch-256 runs use queue_length=3840), SimCLR-style symmetric augmentation.

    Under a distribution strategy Sinkhorn-Knopp normalises over the global batch, as in the
    official code (which all-reduces its sums): each replica gathers every replica's scores
    (without gradient), computes the codes of all of them (after the queue's, which holds the
    gathered embeddings) and keeps its own rows, so the replicas' losses average to the
    global loss.
    """

    method = "swav"
    recipe = "simclr"
    defaults = {"proj_hidden_dim": 2048, "proj_dim": 128, "num_prototypes": 3000,
                "temperature": 0.1, "epsilon": 0.05, "sinkhorn_iterations": 3,
                "queue_length": 0, "queue_start_epoch": 15, "freeze_prototypes_epochs": 1}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.3, "weight_decay": 1e-6,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        self.projector = mlp((h["proj_hidden_dim"] or self.feature_dim, h["proj_dim"]),
                             "projector", in_dim=self.feature_dim)
        self.prototypes = Prototypes(h["num_prototypes"], name="prototypes", dtype="float32")
        self.prototypes.build((None, h["proj_dim"]))
        if h["queue_length"]:
            self.queue1 = Queue(h["queue_length"], h["proj_dim"], name="queue1")
            self.queue2 = Queue(h["queue_length"], h["proj_dim"], name="queue2")

    def ssl_loss(self, out, n):
        h = self.hparams
        z = l2_normalize(f32(out.proj))
        frozen = self.step() < self.epochs_to_steps(h["freeze_prototypes_epochs"])
        s = self.prototypes(z, frozen=frozen)
        if not h["queue_length"]:
            return swav_loss(s[:n], s[n:], h["temperature"], h["sinkhorn_iterations"],
                             h["epsilon"], self.gather(s[:n]), self.gather(s[n:]), row_offset(n))
        out.state["embeddings"] = z
        use = ops.logical_and(self.queue1.full,
                              self.step() >= self.epochs_to_steps(h["queue_start_epoch"]))
        q1 = self.codes(s[:n], self.queue1, use)
        q2 = self.codes(s[n:], self.queue2, use)
        return swapped_prediction(s[:n], s[n:], q1, q2, h["temperature"])

    @staticmethod
    def gather(scores):
        """The global batch's ``scores`` (no gradient: they only feed Sinkhorn-Knopp)."""
        return all_gather(ops.stop_gradient(scores))

    def codes(self, scores, queue, use):
        """This replica's rows of the Sinkhorn-Knopp codes of the global batch's ``scores``,
        computed over [queue·C; global scores] when ``use``."""
        h = self.hparams
        n, everything = ops.shape(scores)[0], self.gather(scores)

        def with_queue():
            past = ops.matmul(queue.values, self.prototypes.kernel)
            q = sinkhorn_knopp(ops.concatenate([past, everything], 0), h["epsilon"],
                               h["sinkhorn_iterations"])
            return q[queue.size:]

        q = ops.cond(use, with_queue, lambda: sinkhorn_knopp(
            everything, h["epsilon"], h["sinkhorn_iterations"]))
        return replica_rows(q, row_offset(n), n)

    def after_update(self, out):
        self.prototypes.renormalize()
        if self.hparams["queue_length"]:
            z = out.needs("embeddings", self.method)
            n = ops.shape(z)[0] // 2
            self.queue1.push(all_gather(z[:n]))
            self.queue2.push(all_gather(z[n:]))
