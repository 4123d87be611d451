"""DINO (Caron et al. 2021, arXiv 2104.14294): two global crops, optionally multi-crop."""
import dataclasses
import numbers

import keras
from keras import ops

from sslzoo.backbones.resnet import MIN_IMAGE_SIZE
from sslzoo.data.augment import MultiCrop, TwoViews, get_recipe
from sslzoo.errors import ConfigError
from sslzoo.losses import dino_loss
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.methods.ema import EMAMethod
from sslzoo.methods.heads import Prototypes, mlp
from sslzoo.methods.state import all_gather, state_weight
from sslzoo.utils.config import is_int


@keras.saving.register_keras_serializable(package="sslzoo")
class DINO(EMAMethod):
    """Self-distillation without labels: the student matches the centred, sharpened output of a
    momentum teacher on the other view,

        L = ½ Σ_{i≠j} −Σ_k P_t(x_i)_k log P_s(x_j)_k,
        P_t = softmax((g_ξ(x) − c)/τ_t),  P_s = softmax(g_θ(x)/τ_s),
        c ← m c + (1 − m)·mean_batch g_ξ(x),   ξ ← λ ξ + (1 − λ) θ,

    where g is backbone → 3-layer MLP (GELU; no BN unless ``use_bn_in_head``, the official
    code's option: Dense → BN → GELU in the two hidden layers) → ℓ2-normalisation →
    weight-normalised linear layer onto K outputs (``prototypes``); λ rises from 0.996 to 1 on
    a cosine, τ_t warms up linearly from 0.04 to 0.07 over ``warmup_teacher_temp_epochs``
    (clipped to the run), and the last layer gets no gradient during the first
    ``freeze_last_layer_epochs`` (schedules in epochs need ``set_training_length``).

    Paper defaults: MLP d → 2048 → 2048 → 256, K = 65536, τ_s = 0.1, centre momentum 0.9,
    AdamW with lr 5e-4 × batch/256 and weight decay 0.04, BYOL-style asymmetric augmentation.
    On a ViT the optimizer is the paper's full ViT recipe (``vit_optim_defaults``): the weight
    decay follows a cosine from 0.04 to 0.4 over the run, and each parameter's gradient is
    clipped to norm 3.0. On a ResNet the decay stays at 0.04 and nothing is clipped (the
    shipped ResNet entries were trained so).

    Multi-crop (hparam ``local_crops`` = L > 0; the paper uses 8): each image also gives L
    local crops of ``local_crops_size`` px (0 = 3/7 of the image size, the paper's 96/224, at
    least 8 px) with crop area U(``local_crops_scale``, ``global_crops_scale``); the two global
    views then use area U(``global_crops_scale``, 1) (``None`` = 0.4, the paper's default with
    multi-crop; its ResNet-50 run uses 0.14 with local 0.05–0.14). The teacher (and so the
    centre) sees only the 2 global views; the student sees all 2 + L, the local crops in one
    backbone pass at their own size, and the loss averages over the 2·(2 + L) − 2 pairs of a
    teacher view with a *different* student crop. The probe, CRR taps and collapse_std use the
    global views only. With L = 0 (default) training is the two-view DINO, and the global crop
    area is the ``byol`` recipe's U(0.08, 1) unless ``global_crops_scale`` is given (the paper
    advises a wide range without multi-crop). UMM does not support multi-crop (it refuses
    L > 0). Local crops add no state, so checkpoints are the same as without them.
    """

    method = "dino"
    recipe = "byol"
    teacher_heads = ("projector", "prototypes")
    defaults = {"proj_hidden_dim": 2048, "proj_dim": 256, "out_dim": 65536,
                "student_temp": 0.1, "teacher_temp": 0.07, "warmup_teacher_temp": 0.04,
                "warmup_teacher_temp_epochs": 30, "center_momentum": 0.9,
                "freeze_last_layer_epochs": 1, "momentum": 0.996,
                "momentum_schedule": "cosine", "local_crops": 0, "local_crops_size": 0,
                "global_crops_scale": None, "local_crops_scale": 0.05, "use_bn_in_head": False}
    optim_defaults = {"optimizer": "adamw", "learning_rate": 5e-4, "weight_decay": 0.04,
                      "scale": "linear"}
    vit_optim_defaults = {**optim_defaults, "weight_decay_end": 0.4, "clipnorm": 3.0}

    def crop_settings(self):
        """(L, local size, global scale, local scale) of multi-crop from the hparams; raises
        a ConfigError for a bad value."""
        h = self.hparams

        def bad(name, need):
            return ConfigError(f"dino hparam {name} must be {need}, got {h[name]!r} "
                               f"(--hparams={name}=...)")

        n_local, size = h["local_crops"], h["local_crops_size"]
        for name in ("local_crops", "local_crops_size"):
            if not is_int(h[name], 0):
                raise bad(name, "an integer >= 0")
        g, loc = h["global_crops_scale"], h["local_crops_scale"]
        if g is not None and not (isinstance(g, numbers.Real) and 0 < g <= 1):
            raise bad("global_crops_scale", "in (0, 1] (or None)")
        if not n_local:
            return 0, 0, g or get_recipe(self.recipe).crop_scale[0], loc
        g = 0.4 if g is None else g
        if not (isinstance(loc, numbers.Real) and 0 < loc < g):
            raise bad("local_crops_scale", f"in (0, global_crops_scale = {g})")
        patch = getattr(self.backbone, "build_args", {}).get("patch_size")
        if patch and size and size % patch:
            raise ConfigError(f"dino hparam local_crops_size must be a multiple of the ViT's "
                              f"patch size {patch}, got {size} (a ViT drops the pixels that "
                              "fill no whole patch)")
        if not size and patch:  # 3/7 of the image, to a whole number of patches
            size = max(patch, round(self.image_size * 3 / 7 / patch) * patch)
        size = size or max(MIN_IMAGE_SIZE, round(self.image_size * 3 / 7))
        if not MIN_IMAGE_SIZE <= size < self.image_size:
            raise ConfigError(
                f"dino hparam local_crops_size must be at least {MIN_IMAGE_SIZE} px and smaller "
                f"than the global crops' {self.image_size} px, got {size} (--hparams="
                "local_crops_size=...; 0 = 3/7 of the image size)")
        return int(n_local), int(size), float(g), float(loc)

    @property
    def local_crops(self):
        return self.crop_settings()[0]

    @property
    def local_size(self):
        return self.crop_settings()[1]

    def view_layer(self):
        """Two global views, then ``local_crops`` local ones (``MultiCrop``) when L > 0."""
        n_local, size, g, loc = self.crop_settings()
        if n_local:
            return MultiCrop(self.recipe, self.image_size, n_local, size, (g, 1.0), (loc, g))
        if self.hparams["global_crops_scale"] is None:
            return super().view_layer()
        recipe = dataclasses.replace(get_recipe(self.recipe), crop_scale=(g, 1.0))
        return TwoViews(recipe, self.image_size)

    def build_heads(self):
        self.crop_settings()  # bad multi-crop hparams fail before anything is built
        h = self.hparams
        bn = self.bool_hparam("use_bn_in_head")
        hidden = h["proj_hidden_dim"] or self.feature_dim
        self.projector = mlp((hidden, hidden, h["proj_dim"]), "projector", hidden_bn=bn,
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
        z = out.proj
        if self.local_crops:  # the local crops' student outputs follow the global ones
            if out.local_proj is None:
                raise ValueError("dino with local_crops > 0 needs out.local_proj (the "
                                 "model's forward_local of the local crops)")
            z = ops.concatenate([z, out.local_proj], 0)
        s = self.prototypes(l2_normalize(f32(z)), frozen=frozen)
        t = self.teacher(out.images, out.cache)  # the two global views only
        out.state["teacher_out"] = t
        student = [s[i * n:(i + 1) * n] for i in range(2 + self.local_crops)]
        return dino_loss(student, [t[:n], t[n:]], self.center, h["student_temp"],
                         self.teacher_temp(step))

    def after_update(self, out):
        super().after_update(out)
        m = self.hparams["center_momentum"]
        teacher_out = all_gather(out.needs("teacher_out", self.method))
        batch_center = ops.mean(teacher_out, axis=0, keepdims=True)
        self.center.assign(m * self.center.value + (1.0 - m) * batch_center)
