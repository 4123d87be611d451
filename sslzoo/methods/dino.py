"""DINO (Caron et al. 2021, arXiv 2104.14294), two global crops (multi-crop is not yet
supported)."""
from keras import ops

from sslzoo.losses import dino_loss
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.heads import Prototypes, mlp
from sslzoo.methods.state import all_gather, state_weight


class DINO(EMAMethod):
    """Self-distillation without labels: the student matches the centred, sharpened output of a
    momentum teacher on the other view,

        L = ½ Σ_{i≠j} −Σ_k P_t(x_i)_k log P_s(x_j)_k,
        P_t = softmax((g_ξ(x) − c)/τ_t),  P_s = softmax(g_θ(x)/τ_s),
        c ← m c + (1 − m)·mean_batch g_ξ(x),   ξ ← λ ξ + (1 − λ) θ,

    where g is backbone → 3-layer MLP (GELU, no BN) → ℓ2-normalisation → weight-normalised
    linear layer onto K outputs (``prototypes``); λ rises from 0.996 to 1 on a cosine, τ_t warms
    up linearly from 0.04 to 0.07 over ``warmup_teacher_temp_epochs`` (clipped to the run), and
    the last layer gets no gradient during the first ``freeze_last_layer_epochs`` (schedules in
    epochs need ``set_training_length``).

    Paper defaults: MLP d → 2048 → 2048 → 256, K = 65536, τ_s = 0.1, centre momentum 0.9,
    AdamW with lr 5e-4 × batch/256 and weight decay 0.04, BYOL-style asymmetric augmentation.
    Not implemented: multi-crop, the weight-decay schedule (0.04 → 0.4), gradient clipping.
    """

    method = "dino"
    recipe = "byol"
    teacher_heads = ("projector", "prototypes")
    defaults = {"proj_hidden_dim": 2048, "proj_dim": 256, "out_dim": 65536,
                "student_temp": 0.1, "teacher_temp": 0.07, "warmup_teacher_temp": 0.04,
                "warmup_teacher_temp_epochs": 30, "center_momentum": 0.9,
                "freeze_last_layer_epochs": 1, "momentum": 0.996,
                "momentum_schedule": "cosine"}
    optim_defaults = {"optimizer": "adamw", "learning_rate": 5e-4, "weight_decay": 0.04,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        hidden = h["proj_hidden_dim"] or self.feature_dim
        self.projector = mlp((hidden, hidden, h["proj_dim"]), "projector", hidden_bn=False,
                             activation="gelu", in_dim=self.feature_dim)
        self.prototypes = Prototypes(h["out_dim"], normalize=True, name="prototypes",
                                     dtype="float32")
        self.prototypes.build((None, h["proj_dim"]))
        self.center = state_weight(self, "center", (1, h["out_dim"]))
        self.build_teacher()

    def teacher_forward(self, images):
        z = self.teacher_projector(self.teacher_backbone(images, training=True), training=True)
        return self.teacher_prototypes(l2_normalize(f32(z)))

    def teacher_temp(self, step):
        """τ_t: linear from warmup_teacher_temp to teacher_temp over the warm-up, then flat."""
        h = self.hparams
        warm = self.epochs_to_steps(h["warmup_teacher_temp_epochs"])
        if self.total_steps:
            warm = min(warm, float(self.total_steps))
        if not warm:
            return h["teacher_temp"]
        frac = ops.clip(ops.cast(step, "float32") / warm, 0.0, 1.0)
        return h["warmup_teacher_temp"] + (h["teacher_temp"] - h["warmup_teacher_temp"]) * frac

    def ssl_loss(self, out, n):
        h = self.hparams
        step = self.step()
        frozen = step < self.epochs_to_steps(h["freeze_last_layer_epochs"])
        s = self.prototypes(l2_normalize(f32(out["proj"])), frozen=frozen)
        t = self.teacher(out["images"])
        self.defer(teacher_out=t)
        return dino_loss([s[:n], s[n:]], [t[:n], t[n:]], self.center, h["student_temp"],
                         self.teacher_temp(step))

    def after_update(self):
        super().after_update()
        m = self.hparams["center_momentum"]
        batch_center = ops.mean(all_gather(self.deferred("teacher_out")), axis=0, keepdims=True)
        self.center.assign(m * self.center.value + (1.0 - m) * batch_center)
