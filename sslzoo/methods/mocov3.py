"""MoCo v3 (Chen, Xie & He 2021, arXiv 2104.02057), its ResNet and ViT settings."""
import keras

from sslzoo.errors import ConfigError
from sslzoo.losses import mocov3_loss
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.heads import mlp
from sslzoo.utils.config import is_int
from sslzoo.utils.replicas import all_gather, row_offset


@keras.saving.register_keras_serializable(package="sslzoo")
class MoCoV3(EMAMethod):
    """Queries q_v = h(g_θ(f_θ(x_v))) through a predictor h, keys k_v = g_ξ(f_ξ(x_v)) from the
    momentum encoder; the other images of the batch are the negatives:

        L = ctr(q1, k2) + ctr(q2, k1),   ctr(q, k) = 2τ · CE(q·kᵀ/τ, labels = arange(N)),

    q, k L2-normalised, ξ ← τ_k ξ + (1 − τ_k) θ with τ rising from 0.99 to 1 on a cosine.

    Defaults (ResNet-50): projector d → 4096 → 256 with BN on every layer (the last without
    affine), predictor 256 → 4096 → 256 (no BN on its output), τ = 1.0, LARS with lr
    0.6 × batch/256 and weight decay 1e-6, BYOL's asymmetric augmentation.

    On a ViT (the paper's section 4 and Table 1): a three-layer projector (``proj_layers``),
    τ = 0.2, AdamW with lr 1.5e-4 × batch/256 and weight decay 0.1, and a **frozen random patch
    projection** (``freeze_patch_embed``: the patch embedding keeps its random initial
    weights, the paper's fix for training instability). Not followed: the paper's fixed
    sin-cos position embeddings and its Xavier init of the patch projection as a linear layer
    (the zoo's ViT has learnt position embeddings and Keras's Glorot init of the convolution).
    """

    method = "mocov3"
    recipe = "byol"
    defaults = {"temperature": 1.0, "proj_hidden_dim": 4096, "proj_dim": 256, "proj_layers": 2,
                "pred_hidden_dim": 4096, "momentum": 0.99, "momentum_schedule": "cosine",
                "freeze_patch_embed": False}
    vit_defaults = {"temperature": 0.2, "proj_layers": 3, "freeze_patch_embed": True}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.6, "weight_decay": 1e-6,
                      "scale": "linear"}
    vit_optim_defaults = {"optimizer": "adamw", "learning_rate": 1.5e-4, "weight_decay": 0.1,
                          "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        if not is_int(h["proj_layers"], 2):
            raise ConfigError(f"mocov3 hparam proj_layers must be an integer >= 2, got "
                              f"{h['proj_layers']!r}")
        dims = (h["proj_hidden_dim"] or self.feature_dim,) * (h["proj_layers"] - 1)
        self.projector = mlp((*dims, h["proj_dim"]), "projector", last_bn=True,
                             in_dim=self.feature_dim)
        if self.bool_hparam("freeze_patch_embed"):
            if "patch_embed" not in {layer.name for layer in self.backbone.layers}:
                raise ConfigError("mocov3 hparam freeze_patch_embed needs a ViT backbone (its "
                                  f"patch embedding); {self.backbone.name} has none")
            self.backbone.get_layer("patch_embed").trainable = False
        self.predictor = mlp((h["pred_hidden_dim"], h["proj_dim"]), "predictor",
                             in_dim=h["proj_dim"])
        self.build_teacher()

    def ssl_loss(self, out, n):
        q = self.predictor(out.proj, training=True)
        k = self.teacher(out.images, out.cache)
        k1, k2 = k[:n], k[n:]  # the negatives are the global batch's keys (all replicas)
        return mocov3_loss(q[:n], q[n:], k1, k2, self.hparams["temperature"], all_gather(k1),
                           all_gather(k2), row_offset(n))
