"""MAE (He et al. 2022, arXiv 2111.06377): masked autoencoders on a Vision Transformer."""
import numbers

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from sslzoo.backbones import vit
from sslzoo.data.augment import Recipe
from sslzoo.errors import ConfigError
from sslzoo.losses import mae_loss, patchify
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.forward import Forward
from sslzoo.utils.config import is_int
from sslzoo.utils.replicas import num_replicas, row_offset
from sslzoo.utils.seeds import seed_for

SMALL_DECODER = (4, 256)  # (blocks, width) up to vit.SMALL_IMAGE_MAX_SIZE px
PAPER_DECODER = (8, 512)  # the paper's default decoder (Table 1a, 1b), above it
DECODER_HEAD_DIM = 32  # the official decoder's 16 heads at width 512
MASK_TOKEN_STD = 0.02


def sincos_2d(dim, grid_size):
    """(1 + g², dim) fixed 2-D sine-cosine position embeddings of a g × g patch grid, row-major,
    after a zero row for the CLS token (MAE's decoder embeddings).

    The first dim/2 channels encode the patch's column c, the last dim/2 its row r, each as
    [sin(x·ω_0 … x·ω_{k−1}), cos(x·ω_0 … x·ω_{k−1})], k = dim/4, ω_j = 10000^(−j/k).
    """
    if dim % 4:
        raise ConfigError(f"sin-cos position embeddings need a width divisible by 4, got {dim}")
    k = dim // 4
    omega = 1.0 / 10000.0 ** (np.arange(k, dtype=np.float64) / k)
    rows, cols = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")

    def axis(pos):
        angle = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)

    grid = np.concatenate([axis(cols), axis(rows)], axis=1)
    return np.concatenate([np.zeros((1, dim)), grid], axis=0).astype("float32")


@keras.saving.register_keras_serializable(package="sslzoo")
class MaskTokens(layers.Layer):
    """[tokens (N, 1 + K, W): the CLS token and the K visible patches in kept order, restore
    (N, L): each grid position's index in [visible; masked] order] → (N, 1 + L, W): CLS, then
    the L = g² patches in grid order with the learnt mask token at every masked one, plus the
    fixed ``sincos_2d`` position embeddings (no weights)."""

    def __init__(self, grid_size, init_std=MASK_TOKEN_STD, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = int(grid_size)
        self.init_std = float(init_std)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.mask_token = self.add_weight(
            shape=(1, 1, dim), initializer=keras.initializers.RandomNormal(stddev=self.init_std),
            name="mask_token")
        self.position = sincos_2d(dim, self.grid_size)

    def call(self, inputs):
        tokens, restore = inputs
        batch, dim, patches = ops.shape(tokens)[0], tokens.shape[-1], self.grid_size ** 2
        masked = patches + 1 - ops.shape(tokens)[1]
        fill = ops.broadcast_to(ops.cast(self.mask_token, tokens.dtype), (batch, masked, dim))
        shuffled = ops.concatenate([tokens[:, 1:], fill], axis=1)  # visible, then masked
        grid = ops.take_along_axis(shuffled, _rows(restore, dim), axis=1)
        out = ops.concatenate([tokens[:, :1], grid], axis=1)
        return out + ops.cast(self.position, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1 + self.grid_size ** 2, input_shape[0][-1])

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size, "init_std": self.init_std}


def _rows(index, dim):
    """(N, K) row indices as take_along_axis wants them for (N, ·, dim) tokens."""
    index = ops.expand_dims(ops.cast(index, "int32"), -1)
    return ops.broadcast_to(index, (*ops.shape(index)[:2], dim))


def build_decoder(in_dim, grid_size, width, depth, heads, out_dim):
    """MAE's decoder as a functional model [latent (N, 1 + K, in_dim), restore (N, g²)] →
    (N, 1 + g², out_dim): Dense to ``width``, ``MaskTokens``, ``depth`` pre-norm blocks
    (``vit.transformer_block``), LayerNorm and a linear prediction (row 0 is the CLS token's)."""
    latent = keras.Input((None, in_dim), name="latent")
    restore = keras.Input((grid_size ** 2,), dtype="int32", name="restore")
    x = layers.Dense(width, name="decoder_embed")(latent)
    x = MaskTokens(grid_size, name="decoder_tokens")([x, restore])
    for i in range(1, depth + 1):
        x = vit.transformer_block(x, width, heads, f"decoder_block{i}")
    x = layers.LayerNormalization(epsilon=vit.LN_EPSILON, name="decoder_norm")(x)
    x = layers.Dense(out_dim, name="decoder_pred")(x)
    return keras.Model([latent, restore], x, name="decoder")


@keras.saving.register_keras_serializable(package="sslzoo")
class MAE(SSLMethod):
    """Masked autoencoder: hide a random ``mask_ratio`` of each image's patches, encode the
    visible ones only, and reconstruct the hidden ones' pixels with a light decoder,

        L = Σ_{n,l} m_nl · mean_k (ŷ_nlk − t_nlk)² / Σ_{n,l} m_nl      (``sslzoo.losses.mae_loss``)

    with m_nl = 1 for a masked patch, ŷ the decoder's prediction and t the patch's pixels (in
    the backbone's [−1, 1] scale), standardised per patch with ``norm_pix_loss`` (the paper's
    setting for representations).

    - Backbone: a ViT of ``sslzoo.backbones.vit`` only. The encoder is its own layers
      (``vit.token_encoder``): patch embedding and its learnt position embeddings over the
      whole grid, then the masked rows taken out, so the blocks and the final norm see the
      CLS token and the K = int(L·(1 − ``mask_ratio``)) visible patches only. The ViT keeps
      its learnt position embeddings (the paper's are fixed sin-cos): the zoo's ViT is shared
      by every method.
    - Masking: per row, the K patches with the smallest of L uniform draws stay visible. The
      draws are a function of (``seed``, optimizer step) for the global batch, so a resumed or
      a multi-replica run masks each image as a one-device run would.
    - Decoder: Dense to ``decoder_width``, a learnt mask token (normal, std 0.02) at the masked
      positions, fixed 2-D sin-cos position embeddings (``sincos_2d``, as the paper's), then
      ``decoder_depth`` pre-norm blocks with ``decoder_heads`` heads, LayerNorm and a Dense to
      p²·3. Defaults: 8 blocks × 512 wide (16 heads), the paper's, above 64 px; 4 × 256
      (8 heads) up to 64 px, within the range of the paper's decoder ablation (Table 1a, 1b)
      and light next to vit_tiny. Heads default to width / 32, the official head width.
    - Two views: the zoo's step gives each image two crop-and-flip views; **each view gets its
      own mask and both are reconstructed**: the loss averages over the masked patches of all
      2N views, i.e. the mean of the two views' losses (equal counts). Each image so gives two
      random crops a step; ``--batch_size`` counts images, as for every method, and scales the
      learning rate.
    - CRR taps: on training steps where the monitors measure (every ``crr_every``), the whole
      (unmasked) encoder runs on the two views with no gradient and the taps, ``pooled`` and
      ``proj`` are measured on it: ΔR's pairs are then the two views of each image, as for every
      method and as the per-epoch CRR callback (inference-mode ``forward``, unmasked) measures.
      Other steps skip that pass. MAE has no projector: ``proj`` is ``pooled`` (an identity
      ``projector``, saved as an empty ``projector.weights.h5``).
    - ``collapse_std`` and the online probe read the step's own embedding, the encoder's
      ``pooled`` output on the visible patches, so ``probe_acc`` is lower than a probe on whole
      images (the run's final linear probe uses whole images).
    - UMM refuses MAE (``umm_refusal``): its loss never runs the split encoders.

    Recipe (the official PRETRAIN.md and main_pretrain.py): AdamW with base lr 1.5e-4 ×
    batch/256, weight decay 0.05, β2 = 0.95; views are a random resized crop of area 0.2–1 and
    a horizontal flip only. The paper warms up for 40 of 800 epochs (``--warmup_epochs``).
    Not implemented: the encoder's fixed sin-cos position embeddings, bicubic resizing (crops
    resize bilinearly) and the per-channel ImageNet normalisation of the inputs.
    """

    method = "mae"
    recipe = Recipe(crop_scale=(0.2, 1.0), flip=True, jitter_p=0.0, gray_p=0.0)
    defaults = {"mask_ratio": 0.75, "norm_pix_loss": True, "decoder_depth": None,
                "decoder_width": None, "decoder_heads": None}
    optim_defaults = {"optimizer": "adamw", "learning_rate": 1.5e-4, "weight_decay": 0.05,
                      "scale": "linear", "beta_2": 0.95}
    umm_refusal = ("MAE's loss runs the encoder on the visible patches and a pixel decoder, "
                   "while UMM's bi-level step and its ΔR term run the two whole views through "
                   "the split early and late encoders and a projector, which MAE's loss never "
                   "sees (MAE has no projector)")

    def __init__(self, backbone, *args, **kwargs):
        if not vit.is_vit(backbone):
            raise ConfigError(f"mae needs a Vision Transformer backbone ("
                              f"{', '.join(vit.available())}): its encoder runs on the visible "
                              f"patches only; got {backbone.name}")
        super().__init__(backbone, *args, **kwargs)

    # ----- settings --------------------------------------------------------------------------
    @property
    def patch_size(self):
        return int(self.backbone.get_layer("patch_embed").kernel_size[0])

    @property
    def num_patches(self):
        """L, the patches of an image (the ViT's grid)."""
        return self.backbone.get_layer("tokens").grid_size ** 2

    @property
    def num_visible(self):
        """K = int(L·(1 − mask_ratio)), the patches the encoder sees; at least 1 and below L."""
        ratio = self.hparams["mask_ratio"]
        if not (isinstance(ratio, numbers.Real) and not isinstance(ratio, bool)
                and 0 < ratio < 1):
            raise ConfigError(f"mae hparam mask_ratio must be in (0, 1), got {ratio!r} "
                              "(--hparams=mask_ratio=0.75)")
        keep = int(self.num_patches * (1 - ratio))
        if not 1 <= keep < self.num_patches:
            raise ConfigError(f"mae hparam mask_ratio={ratio} keeps {keep} of the "
                              f"{self.num_patches} patches; it must keep at least 1 and mask "
                              "at least 1")
        return keep

    def decoder_settings(self):
        """(blocks, width, heads) of the decoder from the hparams (None: the defaults for the
        image size); raises a ConfigError for a bad value."""
        small = self.image_size <= vit.SMALL_IMAGE_MAX_SIZE
        defaults = dict(zip(("decoder_depth", "decoder_width"),
                            SMALL_DECODER if small else PAPER_DECODER))

        def get(name):
            value = self.hparams[name]
            value = defaults[name] if value is None else value
            if not is_int(value, 1):
                raise ConfigError(f"mae hparam {name} must be an integer >= 1 (or None for the "
                                  f"default), got {value!r}")
            return value

        depth, width = get("decoder_depth"), get("decoder_width")
        defaults["decoder_heads"] = max(1, width // DECODER_HEAD_DIM)
        heads = get("decoder_heads")
        if width % 4 or width % heads:
            raise ConfigError(f"mae hparam decoder_width must be a multiple of 4 (sin-cos "
                              f"positions) and of decoder_heads={heads}, got {width}")
        return depth, width, heads

    # ----- heads -----------------------------------------------------------------------------
    def build_heads(self):
        self.num_visible  # a bad mask_ratio fails here, before anything is built
        depth, width, heads = self.decoder_settings()
        self.projector = keras.Sequential([layers.Identity(name="projector_identity")],
                                          name="projector")  # MAE has none: proj = pooled
        self.projector.build((None, self.feature_dim))
        self.visible_encoder = vit.token_encoder(self.backbone)
        grid = self.backbone.get_layer("tokens").grid_size
        self.decoder = build_decoder(self.feature_dim, grid, width, depth, heads,
                                     self.patch_size ** 2 * 3)

    # ----- the masked pass -------------------------------------------------------------------
    def random_mask(self, rows, step):
        """(keep (rows, K) int32, restore (rows, L) int32, mask (rows, L) float32) for ``rows``
        = [view 1; view 2] rows of this replica's images at optimizer step ``step``.

        ``keep`` lists each row's visible patches, ``restore`` each grid position's index in
        [visible; masked] order, and ``mask`` is 1 at the masked patches. The draws are made for
        the global batch from (seed, step) and this replica's rows are taken from them.
        """
        n, patches, keep = rows // 2, self.num_patches, self.num_visible
        noise = tf.random.stateless_uniform((2, num_replicas() * n, patches),
                                            seed_for(self.seed, "mae_mask", step))
        if num_replicas() > 1:
            start = row_offset(n)
            noise = noise[:, start:start + n]
        shuffle = ops.argsort(ops.reshape(noise, (2 * n, patches)), axis=1)
        restore = ops.argsort(shuffle, axis=1)
        mask = ops.cast(restore >= keep, "float32")
        return ops.cast(shuffle[:, :keep], "int32"), ops.cast(restore, "int32"), mask

    def encode_visible(self, images, keep, training=True):
        """The encoder on the CLS token and the ``keep`` patches of ``images``: (N, 1 + K, D)
        tokens after the ViT's final norm."""
        bb = self.backbone
        x = bb.get_layer("patch_embed")(bb.get_layer("preprocess")(images))
        tokens = bb.get_layer("tokens")(x)  # CLS and every patch, positions added
        visible = ops.take_along_axis(tokens[:, 1:], _rows(keep, tokens.shape[-1]), axis=1)
        return self.visible_encoder(ops.concatenate([tokens[:, :1], visible], axis=1),
                                    training=training)

    def reconstruct(self, images, step, training=True):
        """MAE's pass on ``images`` ([view 1; view 2]) with the masks of ``step``: {"latent":
        the encoder's tokens (N, 1 + K, D), "pred": the decoder's patches (N, L, p²·3), "mask",
        "keep", "restore"} (see ``random_mask``)."""
        keep, restore, mask = self.random_mask(ops.shape(images)[0], step)
        latent = self.encode_visible(images, keep, training)
        pred = self.decoder([latent, restore], training=training)[:, 1:]
        return {"latent": latent, "pred": pred, "mask": mask, "keep": keep, "restore": restore}

    def counted_forward(self):
        """The masked pass, what MAE's step differentiates: the encoder on the visible patches
        and the decoder on every position, not the whole encoder."""
        return lambda images, training=False: self.reconstruct(images, 0, training)["pred"]

    def targets(self, images):
        """The patches (N, L, p²·3) the decoder reconstructs: the pixels in the backbone's
        [−1, 1] scale ("preprocess", applied in float32), patchified."""
        scale = self.backbone.get_layer("preprocess")
        x = ops.cast(images, "float32") * scale.scale + scale.offset
        return patchify(x, self.patch_size)

    def mask_step(self):
        """The optimizer step that seeds this step's masks (0 before ``compile``)."""
        opt = getattr(self, "optimizer", None)
        return opt.iterations if opt is not None else 0

    # ----- the step's pieces -----------------------------------------------------------------
    def forward(self, x, training=True):
        """Training: the masked pass on the 2N views, its ``pred`` and ``mask`` in the
        features and ``pooled`` = ``proj`` = the encoder's embedding of the visible patches;
        the CRR monitors measure the unmasked encoder (``monitor_whole``). Inference: the
        unmasked encoder, as every method's ``forward``."""
        if not training:
            return super().forward(x, training=False)
        rec = self.reconstruct(x, self.mask_step(), training=True)
        pooled = self.backbone.get_layer("pooled")(rec["latent"])
        out = Forward(x, {"pooled": pooled, "proj": self.projector(pooled),
                          "pred": rec["pred"], "mask": rec["mask"]})
        self.monitor_whole(x)
        return out

    def monitor_whole(self, x):
        """Run the CRR monitors on the unmasked encoder's features of the views ``x`` (no
        gradient); the pass runs only on the steps where the monitors measure."""
        if not self.monitors:
            return
        taps = list(self.monitors)

        def measure():
            features = dict(self.encoder(x, training=False))
            features["proj"] = self.projector(features["pooled"])
            return {t: ops.cast(ops.stop_gradient(features[t]), "float32") for t in taps}

        def skip():  # the monitors keep their values on these steps
            rows = ops.shape(x)[0]
            return {t: ops.zeros((rows, *self._tap_shape(t)), "float32") for t in taps}

        if self.crr_every == 1:
            features = measure()
        else:
            first = self.monitors[taps[0]]
            features = ops.cond(ops.equal(first.calls % first.every, 0), measure, skip)
        self.monitor(Forward(x, features), training=True)

    def _tap_shape(self, tap):
        if tap in ("pooled", "proj"):
            return (self.feature_dim,)
        return tuple(self.backbone.get_layer(tap).output.shape[1:])

    def ssl_loss(self, out, n):
        if "pred" not in out.features:
            raise ValueError("mae: ssl_loss needs the masked pass's reconstruction; call it on "
                             "the Forward of forward(views, training=True)")
        return mae_loss(out["pred"], self.targets(out.images), out["mask"],
                        self.bool_hparam("norm_pix_loss"))
