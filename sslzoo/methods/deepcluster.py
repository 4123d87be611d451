"""DeepCluster-v2 (Caron et al. 2020, arXiv 2006.09882, appendix; the authors'
main_deepclusterv2.py in github.com/facebookresearch/swav)."""
import keras
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import deepcluster_v2_loss, spherical_kmeans
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.state import state_weight
from sslzoo.utils.config import is_int
from sslzoo.utils.replicas import all_gather, all_sum
from sslzoo.utils.seeds import seed_for


@keras.saving.register_keras_serializable(package="sslzoo")
class DeepClusterV2(SSLMethod):
    """Prediction of k-means clusters of a memory bank. With z_v = g(f(x_v))/‖·‖, H sets of K
    unit centroids C_h and the cluster a_h(i) of image i,

        L = 1/H Σ_h 1/2N Σ_{n, v} −log softmax(z_v,n·C_hᵀ/τ)[a_h(i_n)]

    (``sslzoo.losses.deepcluster_v2_loss``). The memory bank (model state, checkpointed) keeps
    the last z1 and z2 of every training image, by its index in the training set (the batches
    carry it: ``needs_index``). At the first step of every epoch, set h runs spherical k-means
    on the bank of view h mod 2 (10 rounds from K stored rows drawn with the seed of (seed,
    epoch, h); ``sslzoo.losses.spherical_kmeans``); the normalised centroids become the
    prototypes and each image's cluster its target for the epoch. The prototypes get no
    gradient, as in the official runs (their --freeze_prototypes_niters outlasts training).

    The first epoch fills the bank and trains nothing: before any k-means every target is −1,
    which the loss leaves out, so the loss is 0. It stands for the official code's pass over
    the data before epoch 0, made an epoch of the run so that the model needs no pass of its
    own before ``fit`` and a resumed run continues exactly; run one epoch more than the
    paper's count. Its optimizer steps still advance the schedule and apply weight decay
    (LARS gives the decay term alone its trust ratio: matrices shrink by about η·lr a step).
    K-means runs once the bank holds K images, and an image has a target once it was in the
    bank then. An image that a pass leaves out (``drop_remainder``) keeps its older
    embeddings in the bank, where the official bank, rewritten each epoch, drops it.

    Defaults (the official code and scripts): projector d → 2048 → 128 (BN, ReLU), 3 sets of
    3000 prototypes, τ = 0.1, 10 k-means rounds, SwAV's LARS recipe (lr 4.8 at batch 4096,
    0.3 × batch/256, weight decay 1e-6), SimCLR-style symmetric augmentation. ``memory_size``
    is the number of training images (pretraining sets it). Under a distribution strategy the
    bank takes the global batch (gathered embeddings and indices), every replica runs the same
    k-means on it, and the loss averages over the global batch.
    """

    method = "deepcluster_v2"
    recipe = "simclr"
    needs_index = True
    defaults = {"proj_hidden_dim": 2048, "proj_dim": 128, "num_prototypes": 3000,
                "prototype_sets": 3, "temperature": 0.1, "kmeans_iterations": 10,
                "memory_size": 0}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.3, "weight_decay": 1e-6,
                      "scale": "linear"}

    def build_heads(self):
        super().build_heads()  # the two-layer projector
        h = self.hparams
        for name, low in (("num_prototypes", 1), ("prototype_sets", 1),
                          ("kmeans_iterations", 0), ("memory_size", 0)):
            if not is_int(h[name], low):
                raise ConfigError(f"{self.method} hparam {name} must be an integer >= {low}, "
                                  f"got {h[name]!r}")
        m, k, d = h["memory_size"], h["num_prototypes"], h["proj_dim"]
        if m and k > m:
            raise ConfigError(f"{self.method}: num_prototypes={k} exceeds the {m} images of the "
                              "memory bank; lower --hparams=num_prototypes")
        self.memory = state_weight(self, "memory", (m, 2, d))  # z1, z2 of every image
        self.stored = state_weight(self, "stored", (m,))  # 1 once the image is in the bank
        self.centroids = state_weight(self, "centroids", (h["prototype_sets"], k, d))
        self.assignments = state_weight(self, "assignments", (h["prototype_sets"], m), "int32",
                                        keras.initializers.Constant(-1))

    def ssl_loss(self, out, n):
        h = self.hparams
        if out.index is None:
            raise ValueError(f"{self.method} needs the training-set index of each image "
                             "(out.index; batches of (views, labels, index))")
        z = l2_normalize(f32(out.proj))
        out.state["embeddings"] = ops.stop_gradient(z)
        centroids, assignments = self.clusters(out)
        targets = ops.take(assignments, out.index, axis=1)  # (H, N); both views: their image's
        losses = [deepcluster_v2_loss(ops.matmul(z, ops.transpose(centroids[i])),
                                      ops.tile(targets[i], [2]), h["temperature"], all_sum)
                  for i in range(h["prototype_sets"])]
        return ops.mean(ops.stack(losses))

    def clusters(self, out):
        """(centroids, assignments) for this step: a new k-means at the first step of an epoch
        (once the bank holds num_prototypes images), else the stored ones. Memoised in
        ``out.cache``, so UMM's forwards of one batch share one k-means."""
        if "clusters" not in out.cache:
            if not self.memory.shape[0] or not self.steps_per_epoch:
                raise ConfigError(f"{self.method} needs memory_size (the training images; "
                                  "pretraining sets it) and steps_per_epoch (sslzoo.methods."
                                  "set_training_length): k-means runs at every epoch start")
            step = ops.convert_to_tensor(self.optimizer.iterations)
            epoch, within = step // self.steps_per_epoch, step % self.steps_per_epoch
            fresh = ops.logical_and(within == 0, ops.sum(self.stored) >= self.centroids.shape[1])
            out.cache["clusters"] = ops.cond(
                fresh, lambda: self.kmeans(epoch),
                lambda: (ops.convert_to_tensor(self.centroids),
                         ops.convert_to_tensor(self.assignments)))
        return out.cache["clusters"]

    def kmeans(self, epoch):
        """(centroids (H, K, D), assignments (H, M); −1 for images not in the bank) of every
        set's k-means on the bank, set h on view h mod 2."""
        h, stored = self.hparams, self.stored > 0
        centroids, assignments = [], []
        for i in range(h["prototype_sets"]):
            bank = self.memory[:, i % 2]
            init = ops.take(bank, self.initial_rows(epoch, i), axis=0)
            c, a = spherical_kmeans(bank, init, h["kmeans_iterations"], self.stored)
            centroids.append(c)
            assignments.append(ops.where(stored, a, -1))
        return ops.stack(centroids), ops.stack(assignments)

    def initial_rows(self, epoch, i):
        """num_prototypes distinct stored rows of the bank, drawn with the seed of (seed,
        epoch, set i): set i's initial centroids at ``epoch``."""
        sets = self.hparams["prototype_sets"]
        keys = tf.random.stateless_uniform(self.stored.shape,
                                           seed_for(self.seed, "kmeans", epoch * sets + i))
        return ops.top_k(ops.where(self.stored > 0, keys, -1.0), self.centroids.shape[1])[1]

    def after_update(self, out):
        z = out.needs("embeddings", self.method)
        n = ops.shape(z)[0] // 2
        index = ops.expand_dims(all_gather(out.index), 1)
        rows = ops.stack([all_gather(z[:n]), all_gather(z[n:])], axis=1)  # (global N, 2, D)
        self.memory.assign(ops.scatter_update(self.memory, index, rows))
        self.stored.assign(ops.scatter_update(self.stored, index,
                                              ops.ones(ops.shape(index)[:1])))
        centroids, assignments = self.clusters(out)
        self.centroids.assign(centroids)
        self.assignments.assign(assignments)
