"""Vision Transformers (Dosovitskiy et al. 2021, arXiv 2010.11929) as functional Keras models,
with the DINO / MAE conventions: pre-norm blocks, a CLS token, LayerNorm eps 1e-6, no head.

Input convention (as the ResNets): **raw pixels in [0, 255]**, shape (N, S, S, 3); the first
layer, `Rescaling(1/127.5, offset=-1)` named "preprocess", maps them to [-1, 1].

Graph: "patch_embed" (Conv2D, kernel = stride = patch size p) → "tokens" (`PatchTokens`:
flatten the (S/p)² grid, prepend the learnable CLS token, add learnable position embeddings)
→ blocks 1 … depth → "norm" (final LayerNorm) → "pooled" (N, width): the CLS token
(``pool="cls"``, default) or the mean of the patch tokens (``pool="mean"``), both after "norm".
Block i is x + MHA(LN(x)), then x + MLP(LN(x)) with MLP = Dense(4·width) → GELU (exact) →
Dense(width); no dropout, no drop-path, no layer scale.

Named layers of block i, in order: "block{i}_norm1", "block{i}_attn", "block{i}_add1",
"block{i}_norm2", "block{i}_mlp_fc1", "block{i}_mlp_gelu", "block{i}_mlp_fc2",
"block{i}_add2" (the block's tokens), then

- "block{i}": the **tap**, the CLS token of the block's tokens, (N, width), before any
  LayerNorm (taps read the CLS token whatever ``pool`` is); the CRR monitors, ranks and probes
  take it like a pooled ResNet stage;
- "block{i}_out": the block's tokens (N, 1 + (S/p)², width) again, the CLS row taken from the
  tap (`ReplaceCls`, an exact identity). It is the tensor the next block consumes, so that the
  tap lies on the path to the output (a functional model keeps only such layers) and a model
  cut at "block{i}_out" (UMM's early / late split, `sslzoo.backbones.blocks_of`) is connected.

Other image sizes: the graph has no fixed token count except in "tokens", which bicubically
interpolates (``keras.ops.image.resize``, half-pixel centres, no antialiasing) the patch
position embeddings from the built (S/p)² grid to the grid of its input and keeps CLS's, so the
layers run on any input whose side is a multiple of p (DINO's local crops). The Input itself has
the fixed build size; `sslzoo.methods.base.local_encoder` (the layers re-applied on an Input of
another size) gives the model at another size with the same weights. A side that is not a
multiple of p loses its last side % p pixel rows and columns (valid convolution).

Mixed precision: attention scores and their softmax are computed in float32 under any dtype
policy (`Float32Attention`); the probabilities are cast to the compute dtype only for the
product with the values.
"""
import math
import re

import keras
from keras import layers, ops

from sslzoo.backbones.resnet import _check_image_size
from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.utils.config import is_int

# name -> (width, depth, heads)
_SPECS = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
}
POOLS = ("cls", "mean")
SMALL_IMAGE_MAX_SIZE = 64  # the default patch is SMALL_PATCH up to this image size, else 16
SMALL_PATCH, LARGE_PATCH = 4, 16
MLP_RATIO = 4
LN_EPSILON = 1e-6
INIT_STD = 0.02  # truncated-normal std of the CLS token and the position embeddings


def available():
    """Names accepted by `build`."""
    return sorted(_SPECS)


def depth_of(name):
    """The number of transformer blocks of ViT `name`."""
    if name not in _SPECS:
        raise unknown_choice("ViT", name, available())
    return _SPECS[name][1]


def quarter_taps(depth):
    """The block taps at every quarter of the depth: ("block3", …, "block12") for 12 blocks."""
    picks = sorted({max(1, round(depth * q / 4)) for q in range(1, 5)})
    return tuple(f"block{i}" for i in picks)


def block_of(path):
    """Where a ViT variable sits, by its path: i for block i ("block<i>_…"), 0 for the patch
    embedding, the CLS token and the position embeddings ("patch_embed", "tokens"), None after
    the blocks (the final norm). The first named layer on the path decides."""
    for part in str(path).split("/"):
        if part in ("patch_embed", "tokens"):
            return 0
        match = re.fullmatch(r"block(\d+)_.*", part)
        if match:
            return int(match.group(1))
    return None


def layer_index(path, depth):
    """The layer of a ViT variable for layer-wise learning-rate decay (BEiT's convention, which
    MAE's fine-tuning uses): ``block_of(path)``, and depth + 1 after the blocks."""
    index = block_of(path)
    return depth + 1 if index is None else index


def default_patch_size(image_size):
    """4 px patches for images up to 64 px (64 tokens at 32 px), 16 px above (196 at 224)."""
    return SMALL_PATCH if image_size <= SMALL_IMAGE_MAX_SIZE else LARGE_PATCH


def resolve_patch_size(image_size, patch_size=None):
    """The patch side: `patch_size`, or `default_patch_size`; it must divide `image_size`."""
    if patch_size is None:
        patch_size = default_patch_size(image_size)
    elif not is_int(patch_size, lower=1):
        raise ConfigError(f"patch_size must be a positive int, got {patch_size!r}; pass the "
                          "side of a square patch in pixels, e.g. 4, or None for the default "
                          f"({SMALL_PATCH} up to {SMALL_IMAGE_MAX_SIZE} px, {LARGE_PATCH} above)")
    if image_size % patch_size:
        below = image_size - image_size % patch_size
        sizes = " or ".join(str(s) for s in (below, below + patch_size) if s)
        raise ConfigError(
            f"image_size {image_size} is not a multiple of the patch size {patch_size}; use an "
            f"image_size of {sizes}, or a patch_size that divides it")
    return patch_size


@keras.saving.register_keras_serializable(package="sslzoo")
class PatchTokens(layers.Layer):
    """(N, h, w, D) patch embeddings → (N, 1 + h·w, D) tokens: [CLS; patches row-major] plus
    position embeddings, learnt for a `grid_size`² grid (truncated normal, std `init_std`) and
    interpolated bicubically to an h × w grid of another size (CLS's position kept)."""

    def __init__(self, grid_size, init_std=INIT_STD, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = int(grid_size)
        self.init_std = float(init_std)

    def build(self, input_shape):
        dim = input_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.init_std)
        self.cls_token = self.add_weight(shape=(1, 1, dim), initializer=init, name="cls_token")
        self.pos_embed = self.add_weight(shape=(1, 1 + self.grid_size ** 2, dim),
                                         initializer=init, name="pos_embed")

    def position_embedding(self, h, w):
        """(1, 1 + h·w, D) float32 position embeddings for an h × w patch grid."""
        pos = ops.cast(self.pos_embed, "float32")
        if isinstance(h, int) and isinstance(w, int) and h == w == self.grid_size:
            return pos
        dim = pos.shape[-1]
        grid = ops.reshape(pos[:, 1:], (1, self.grid_size, self.grid_size, dim))
        grid = ops.image.resize(grid, (h, w), interpolation="bicubic", antialias=False,
                                data_format="channels_last")
        return ops.concatenate([pos[:, :1], ops.reshape(grid, (1, -1, dim))], axis=1)

    def call(self, x):
        h, w, dim = x.shape[1], x.shape[2], x.shape[3]
        if h is None or w is None:
            h, w = ops.shape(x)[1], ops.shape(x)[2]
        batch = ops.shape(x)[0]
        patches = ops.reshape(x, (batch, -1, dim))
        cls = ops.broadcast_to(ops.cast(self.cls_token, x.dtype), (batch, 1, dim))
        tokens = ops.concatenate([cls, patches], axis=1)
        return tokens + ops.cast(self.position_embedding(h, w), x.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, dim = input_shape
        return (n, None if h is None or w is None else 1 + h * w, dim)

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size, "init_std": self.init_std}


@keras.saving.register_keras_serializable(package="sslzoo")
class Float32Attention(layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose scores q·kᵀ/√d and softmax are float32 under
    any dtype policy (under mixed_float16 the stock layer forms the scores in float16, where
    they overflow past 65504); ``return_attention_scores=True`` returns these float32
    probabilities. For rank-3 inputs (N, T, D), attention over T."""

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, **kwargs):
        # query (B, T, heads, d), key / value (B, S, heads, d) -> scores (B, heads, T, S)
        scores = ops.einsum("btnh,bsnh->bnts", ops.cast(query, "float32"),
                            ops.cast(key, "float32")) * (1.0 / math.sqrt(self.key_dim))
        if attention_mask is not None:  # (B, T, S), True = attend
            scores = ops.where(ops.expand_dims(attention_mask, 1), scores, -1e9)
        probs = ops.softmax(scores, axis=-1)
        if self.dropout:
            probs = self._dropout_layer(probs, training=training)
        out = ops.einsum("bnts,bsnh->btnh", ops.cast(probs, value.dtype), value)
        return out, probs


@keras.saving.register_keras_serializable(package="sslzoo")
class TokenPool(layers.Layer):
    """(N, 1 + P, D) tokens → (N, D): the CLS token (``mode="cls"``) or the mean of the P patch
    tokens (``mode="mean"``, accumulated in float32)."""

    def __init__(self, mode="cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLS:
            raise unknown_choice("pool", mode, POOLS)
        self.mode = mode

    def call(self, x):
        if self.mode == "cls":
            return x[:, 0]
        return ops.cast(ops.mean(ops.cast(x[:, 1:], "float32"), axis=1), x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="sslzoo")
class ReplaceCls(layers.Layer):
    """[tokens (N, 1 + P, D), cls (N, D)] → the tokens with row 0 replaced by `cls`."""

    def call(self, inputs):
        tokens, cls = inputs
        return ops.concatenate([ops.expand_dims(ops.cast(cls, tokens.dtype), 1), tokens[:, 1:]],
                               axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def transformer_block(x, width, heads, prefix):
    """Pre-norm block: x + MHA(LN(x)), then x + MLP(LN(x)); returns (tokens, CLS tap)."""
    h = layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{prefix}_norm1")(x)
    h = Float32Attention(heads, width // heads, name=f"{prefix}_attn")(h, h)
    x = layers.Add(name=f"{prefix}_add1")([x, h])
    h = layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{prefix}_norm2")(x)
    h = layers.Dense(MLP_RATIO * width, name=f"{prefix}_mlp_fc1")(h)
    h = layers.Activation("gelu", name=f"{prefix}_mlp_gelu")(h)
    h = layers.Dense(width, name=f"{prefix}_mlp_fc2")(h)
    x = layers.Add(name=f"{prefix}_add2")([x, h])
    tap = TokenPool("cls", name=prefix)(x)
    return ReplaceCls(name=f"{prefix}_out")([x, tap])


def is_vit(model):
    """Whether ``model`` is a ViT of `build` (its "patch_embed", "tokens" and "norm" layers)."""
    names = {layer.name for layer in model.layers}
    return ({"patch_embed", "tokens", "norm", "pooled"} <= names
            and isinstance(model.get_layer("tokens"), PatchTokens))


def token_encoder(model):
    """The blocks and the final "norm" of ViT ``model`` (its own layers, so its weights) as a
    model from tokens (N, T, width) of any length T to the normalised tokens (N, T, width).

    Row 0 must be the CLS token (each block's tap reads it). MAE runs it on the CLS token and
    the visible patches' tokens only ("tokens"' output with the masked rows taken out); on all
    1 + (S/p)² tokens it gives "norm"'s output. ``model`` itself is unchanged.
    """
    if not is_vit(model):
        raise ConfigError(f"{model.name} is not a Vision Transformer of "
                          f"sslzoo.backbones.vit ({', '.join(available())})")
    width = model.get_layer("tokens").output.shape[-1]
    blocks = keras.Model(model.get_layer("tokens").output, model.get_layer("norm").output)
    net = keras.models.clone_model(blocks, clone_function=lambda layer: layer,
                                   input_tensors=keras.Input((None, width), name="tokens_in"))
    return keras.Model(net.inputs, net.outputs, name=f"{model.name}_tokens")


def build(name, image_size=32, patch_size=None, pool="cls"):
    """A ViT backbone `name` as a functional keras.Model named `name`.

    Input "images": (N, image_size, image_size, 3) pixels in [0, 255]. Output "pooled":
    (N, width); 192 (vit_tiny), 384 (vit_small), 768 (vit_base). `patch_size` (default 4 up to
    64 px, else 16) must divide image_size. Taps "block1" … "block12" are the blocks' CLS tokens
    (N, width). The model's ``build_args`` are this call's arguments (patch size resolved).
    """
    if name not in _SPECS:
        raise unknown_choice("backbone", name, available())
    _check_image_size(image_size)
    patch = resolve_patch_size(image_size, patch_size)
    if pool not in POOLS:
        raise unknown_choice("pool", pool, POOLS)
    width, depth, heads = _SPECS[name]

    images = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0, name="preprocess")(images)
    x = layers.Conv2D(width, patch, strides=patch, padding="valid", name="patch_embed")(x)
    x = PatchTokens(image_size // patch, name="tokens")(x)
    for i in range(1, depth + 1):
        x = transformer_block(x, width, heads, f"block{i}")
    x = layers.LayerNormalization(epsilon=LN_EPSILON, name="norm")(x)
    pooled = TokenPool(pool, name="pooled")(x)
    model = keras.Model(images, pooled, name=name)
    model.build_args = {"name": name, "image_size": image_size, "patch_size": patch,
                        "pool": pool}  # what rebuilds it (an SSL model's config)
    return model


__all__ = ["Float32Attention", "PatchTokens", "ReplaceCls", "TokenPool", "available", "build",
           "block_of", "default_patch_size", "depth_of", "is_vit", "layer_index", "quarter_taps",
           "resolve_patch_size", "token_encoder", "transformer_block"]
