"""Vision Transformers: shapes, taps, parameter counts, patch sizes, position-embedding
interpolation, pooling, float32 attention under mixed precision, serialisation, the registry."""
import keras
import numpy as np
import pytest

from sslzoo import backbones
from sslzoo.backbones import vit
from sslzoo.errors import ConfigError
from sslzoo.methods.base import local_encoder
from tests.backbones.test_resnet import mixed_policy  # noqa: F401 (a fixture)
from tests.backbones.test_resnet import every_weight_gets_gradient, n_trainable, pixels, to_np

SPECS = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}
# timm's vit_small/base_patch16_224 without the 1000-class head (22,050,664 − 385,000 and
# 86,567,656 − 769,000 trainable parameters).
TIMM_PARAMS_224 = {"vit_small": 21_665_664, "vit_base": 85_798_656}


def analytic_params(width, depth, patch, tokens):
    """Patch conv (p²·3·D + D) + CLS (D) + positions (T·D) + depth × block + final LN (2D);
    block = 2 LN (4D) + attention q, k, v, out (4D² + 4D) + MLP (8D² + 5D)."""
    embed = patch * patch * 3 * width + width + width + tokens * width
    block = 4 * width + 4 * width * width + 4 * width + 8 * width * width + 5 * width
    return embed + depth * block + 2 * width


@pytest.fixture(scope="module")
def tiny():
    return backbones.build("vit_tiny")


def test_shapes_of_pooled_and_every_tap(tiny):
    assert tiny.name == "vit_tiny"
    assert tiny.input.name == "images" and tuple(tiny.input.shape) == (None, 32, 32, 3)
    assert tiny.get_layer("patch_embed").output.shape == (None, 8, 8, 192)
    assert tiny.get_layer("tokens").output.shape == (None, 65, 192)  # CLS + 64 patches
    assert tiny.get_layer("pooled").output is tiny.output
    encoder = keras.Model(tiny.input, {f"block{i}": tiny.get_layer(f"block{i}").output
                                       for i in range(1, 13)})
    taps = {k: to_np(v) for k, v in encoder(pixels(2), training=False).items()}
    assert set(taps) == {f"block{i}" for i in range(1, 13)}
    for i in range(1, 13):
        assert taps[f"block{i}"].shape == (2, 192) and np.all(np.isfinite(taps[f"block{i}"]))
        assert tiny.get_layer(f"block{i}_out").output.shape == (None, 65, 192)
    y = to_np(tiny(pixels(2), training=False))
    assert y.shape == (2, 192) and np.all(np.isfinite(y))


def test_tap_is_the_cls_token_and_block_out_is_the_blocks_tokens(tiny):
    names = ("block4_add2", "block4", "block4_out", "norm")
    probe = keras.Model(tiny.input, {n: tiny.get_layer(n).output for n in names})
    out = {k: to_np(v) for k, v in probe(pixels(2, seed=3), training=False).items()}
    np.testing.assert_array_equal(out["block4"], out["block4_add2"][:, 0])
    np.testing.assert_array_equal(out["block4_out"], out["block4_add2"])
    np.testing.assert_allclose(to_np(tiny(pixels(2, seed=3))), out["norm"][:, 0], atol=1e-6)


@pytest.mark.parametrize("name", ["vit_tiny", "vit_small"])
def test_parameter_counts_match_the_analytic_count(name):
    width, depth, _ = SPECS[name]
    model = backbones.build(name, image_size=32)  # patch 4: 64 patches + CLS
    assert n_trainable(model) == analytic_params(width, depth, 4, 65)
    assert model.output.shape[-1] == width
    assert not model.non_trainable_weights


def test_parameter_counts_at_224_match_timm():
    assert analytic_params(192, 12, 4, 65) == 5_360_832
    assert analytic_params(192, 12, 16, 197) == 5_524_416
    for name, expected in TIMM_PARAMS_224.items():
        width, depth, _ = SPECS[name]
        assert analytic_params(width, depth, 16, 197) == expected
    assert n_trainable(backbones.build("vit_small", image_size=224)) == 21_665_664


def test_block_layers_and_hyperparameters(tiny):
    attn = tiny.get_layer("block7_attn")
    assert isinstance(attn, vit.Float32Attention)
    assert isinstance(attn, keras.layers.MultiHeadAttention)
    assert attn.num_heads == 3 and attn.key_dim == 64 and attn.dropout == 0
    assert tiny.get_layer("block7_mlp_fc1").units == 768
    assert tiny.get_layer("block7_mlp_fc2").units == 192
    assert tiny.get_layer("block7_mlp_gelu").activation is keras.activations.gelu
    for layer in tiny.layers:
        if isinstance(layer, keras.layers.LayerNormalization):
            assert layer.epsilon == 1e-6
    conv = tiny.get_layer("patch_embed")
    assert conv.kernel_size == (4, 4) and conv.strides == (4, 4) and conv.padding == "valid"
    tokens = tiny.get_layer("tokens")
    assert tuple(tokens.cls_token.shape) == (1, 1, 192)
    assert tuple(tokens.pos_embed.shape) == (1, 65, 192)
    assert 0.01 < float(np.std(to_np(tokens.pos_embed))) < 0.03  # truncated normal, std 0.02
    assert float(np.max(np.abs(to_np(tokens.pos_embed)))) <= 0.04 + 1e-6  # within 2 std


@pytest.mark.parametrize("size, patch", [(8, 4), (32, 4), (64, 4), (96, 16), (224, 16)])
def test_default_patch_size(size, patch):
    assert vit.default_patch_size(size) == patch == vit.resolve_patch_size(size)


def test_patch_size_override_and_build_args():
    model = backbones.build("vit_tiny", image_size=32, patch_size=8)
    assert model.get_layer("tokens").output.shape == (None, 17, 192)
    assert model.build_args == {"name": "vit_tiny", "image_size": 32, "patch_size": 8,
                                "pool": "cls"}
    assert backbones.build(**model.build_args).get_layer("patch_embed").strides == (8, 8)


@pytest.mark.parametrize("size, patch, match", [
    (34, None, "34 is not a multiple of the patch size 4; use an image_size of 32 or 36"),
    (72, None, "72 is not a multiple of the patch size 16; use an image_size of 64 or 80"),
    (32, 5, "32 is not a multiple of the patch size 5; use an image_size of 30 or 35"),
    (32, 64, "32 is not a multiple of the patch size 64; use an image_size of 64,"),
    (32, 0, "patch_size must be a positive int"),
    (32, 4.0, "patch_size must be a positive int"),
])
def test_patch_size_errors(size, patch, match):
    with pytest.raises(ConfigError, match=match):
        backbones.build("vit_tiny", image_size=size, patch_size=patch)


@pytest.mark.parametrize("size", [7, 0, 32.0, "32", True])
def test_bad_image_size(size):
    with pytest.raises(ConfigError, match="image_size"):
        backbones.build("vit_tiny", image_size=size)


def test_position_embeddings_interpolate_to_another_grid(tiny):
    tokens = tiny.get_layer("tokens")
    same = to_np(tokens.position_embedding(8, 8))
    np.testing.assert_array_equal(same, to_np(tokens.pos_embed))  # identity at the build size
    small = to_np(tokens.position_embedding(4, 4))
    assert small.shape == (1, 17, 192)
    np.testing.assert_array_equal(small[:, 0], to_np(tokens.pos_embed)[:, 0])  # CLS kept
    # Bicubic resize to the same grid through the general path is the identity too.
    grid = keras.ops.reshape(tokens.pos_embed[:, 1:], (1, 8, 8, 192))
    resized = keras.ops.image.resize(grid, (8, 8), interpolation="bicubic")
    np.testing.assert_allclose(to_np(resized), to_np(grid), atol=1e-6)


def test_local_crops_run_through_the_local_encoder(tiny):
    local = local_encoder(tiny, 16)  # how DINO's multi-crop encodes its local crops
    assert local.get_layer("tokens") is tiny.get_layer("tokens")  # shared weights
    y = to_np(local(pixels(3, size=16), training=False))
    assert y.shape == (3, 192) and np.all(np.isfinite(y))
    big = to_np(local_encoder(tiny, 48)(pixels(1, size=48), training=False))
    assert big.shape == (1, 192) and np.all(np.isfinite(big))
    same = local_encoder(tiny, 32)
    np.testing.assert_allclose(to_np(same(pixels(2), training=False)),
                               to_np(tiny(pixels(2), training=False)), atol=1e-5)


def test_mean_pool():
    model = backbones.build("vit_tiny", pool="mean")
    assert model.get_layer("pooled").mode == "mean"
    probe = keras.Model(model.input, [model.get_layer("norm").output, model.output])
    normed, pooled = (to_np(t) for t in probe(pixels(2), training=False))
    np.testing.assert_allclose(pooled, normed[:, 1:].mean(axis=1), atol=1e-5)
    with pytest.raises(ConfigError, match="unknown pool 'max'; valid choices: cls, mean"):
        backbones.build("vit_tiny", pool="max")


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
def test_mixed_float16_output_and_float32_attention(mixed_policy):
    model = backbones.build("vit_tiny")
    attn = model.get_layer("block1_attn")
    assert attn.compute_dtype == "float16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    y = model(pixels(2), training=True)
    assert str(y.dtype) in ("float16", "<dtype: 'float16'>")
    assert np.all(np.isfinite(to_np(keras.ops.cast(y, "float32"))))
    h = keras.ops.cast(np.random.default_rng(0).normal(size=(2, 65, 192)), "float16")
    out, probs = attn(h, h, return_attention_scores=True)
    assert str(out.dtype) in ("float16", "<dtype: 'float16'>")
    assert str(probs.dtype) in ("float32", "<dtype: 'float32'>")
    assert tuple(probs.shape) == (2, 3, 65, 65)
    np.testing.assert_allclose(to_np(keras.ops.sum(probs, -1)), 1.0, atol=1e-5)


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
def test_attention_scores_do_not_overflow_in_float16(mixed_policy):
    # q·k of 64 dims at |q| = |k| = 200 is 2.6e6, beyond float16's 65504: the stock layer's
    # float16 scores overflow; the float32 ones stay finite.
    x = keras.ops.cast(np.full((1, 4, 8), 1.0), "float16")
    ours = vit.Float32Attention(1, 64, name="ours")
    stock = keras.layers.MultiHeadAttention(1, 64, name="stock")
    ours(x, x), stock(x, x)
    for layer in (ours, stock):  # query and key kernels big: q = k = 200 in every dim
        for v in layer.weights:
            big = "kernel" in v.path and ("query" in v.path or "key" in v.path)
            v.assign(np.full(v.shape, 25.0 if big else 0.01 if "kernel" in v.path else 0.0))
    ours_out = to_np(keras.ops.cast(ours(x, x), "float32"))
    assert np.all(np.isfinite(ours_out))
    stock_out = to_np(keras.ops.cast(stock(x, x), "float32"))
    assert not np.all(np.isfinite(stock_out))  # why Float32Attention exists


def test_policy_restored_after_float16():
    assert keras.mixed_precision.global_policy().name == "float32"


def test_custom_layer_config_round_trip():
    tokens = vit.PatchTokens(6, init_std=0.01, name="t")
    clone = vit.PatchTokens.from_config(tokens.get_config())
    assert (clone.grid_size, clone.init_std, clone.name) == (6, 0.01, "t")
    pool = vit.TokenPool.from_config(vit.TokenPool("mean", name="p").get_config())
    assert pool.mode == "mean" and pool.name == "p"
    attn = vit.Float32Attention.from_config(vit.Float32Attention(3, 64).get_config())
    assert isinstance(attn, vit.Float32Attention) and attn.num_heads == 3
    assert isinstance(vit.ReplaceCls.from_config(vit.ReplaceCls().get_config()), vit.ReplaceCls)
    with pytest.raises(ConfigError, match="pool"):
        vit.TokenPool("max")


def test_get_config_round_trip(tiny):
    clone = keras.Model.from_config(tiny.get_config())
    assert [l.name for l in clone.layers] == [l.name for l in tiny.layers]
    clone.set_weights(tiny.get_weights())
    x = pixels(2, seed=1)
    np.testing.assert_allclose(to_np(clone(x)), to_np(tiny(x)), atol=1e-6)


def test_keras_and_weights_files_round_trip(tiny, tmp_path):
    x = pixels(2, seed=2)
    tiny.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras", safe_mode=True)
    assert loaded.name == "vit_tiny"
    assert isinstance(loaded.get_layer("block3_attn"), vit.Float32Attention)
    np.testing.assert_allclose(to_np(loaded(x)), to_np(tiny(x)), atol=1e-6)
    tiny.save_weights(tmp_path / "vit.weights.h5")
    fresh = backbones.build("vit_tiny")
    fresh.load_weights(tmp_path / "vit.weights.h5")
    np.testing.assert_allclose(to_np(fresh(x)), to_np(tiny(x)), atol=1e-6)


def test_raw_pixel_input(tiny):
    layer = tiny.get_layer("preprocess")
    assert tiny.layers[1] is layer and isinstance(layer, keras.layers.Rescaling)
    out = to_np(layer(np.array([[0.0, 127.5, 255.0]], "float32")))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]], atol=1e-6)
    x = pixels(2).round()
    np.testing.assert_allclose(to_np(tiny(x.astype("uint8"))), to_np(tiny(x)), atol=1e-5)


def test_gradients_reach_every_weight(tiny):
    assert every_weight_gets_gradient(tiny, 2)  # the CLS token and positions included


def test_registry_dispatch_and_errors():
    assert backbones.available() == ["resnet18", "resnet50", "resnet_small", "resnet_tiny",
                                     "vit_base", "vit_small", "vit_tiny"]
    with pytest.raises(ConfigError, match="resnet18, .*vit_base, vit_small, vit_tiny"):
        backbones.build("vit_huge")
    with pytest.raises(ConfigError, match="vit_tiny is a Vision Transformer and has no stem"):
        backbones.build("vit_tiny", stem="cifar")
    with pytest.raises(ConfigError, match=r"no option\(s\) \['patch_size'\]"):
        backbones.build("resnet_tiny", patch_size=4)
    with pytest.raises(ConfigError, match=r"no option\(s\) \['depth'\]"):
        backbones.build("vit_tiny", depth=4)
    model = backbones.build("vit_tiny", stem="auto", sync_bn=True)  # both accepted, no BN
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)


def test_default_taps_and_blocks_of(tiny):
    vit_taps = ("block3", "block6", "block9", "block12")
    assert backbones.default_taps("vit_tiny") == vit_taps == backbones.default_taps(tiny)
    assert backbones.default_taps("vit_base") == vit_taps
    stages = ("stage1", "stage2", "stage3", "stage4")
    resnet = backbones.build("resnet_tiny")
    assert backbones.default_taps("resnet18") == stages == backbones.default_taps(resnet)
    with pytest.raises(ConfigError, match="unknown backbone"):
        backbones.default_taps("alexnet")
    assert vit.quarter_taps(8) == ("block2", "block4", "block6", "block8")
    assert vit.quarter_taps(2) == ("block1", "block2")
    assert backbones.blocks_of(tiny) == [f"block{i}_out" for i in range(1, 13)]
    assert backbones.blocks_of(resnet) == list(stages)
    assert backbones.blocks_of(backbones.build("resnet18"))[:3] == [
        "stage1_block1_out", "stage1", "stage2_block1_out"]


def test_split_at_a_block_output_is_connected(tiny):
    """A model cut after k blocks (UMM's early / late parts) composes back to the whole."""
    mid = tiny.get_layer("block4_out").output
    early = keras.Model(tiny.input, {"block4_out": mid, "block2": tiny.get_layer("block2").output})
    late = keras.Model(mid, {"pooled": tiny.output, "block9": tiny.get_layer("block9").output})
    x = pixels(2, seed=4)
    out = late(early(x)["block4_out"])
    np.testing.assert_allclose(to_np(out["pooled"]), to_np(tiny(x)), atol=1e-5)
    assert tuple(out["block9"].shape) == (2, 192)


def test_token_encoder_runs_the_blocks_on_any_number_of_tokens(tiny):
    """MAE's encoder: the ViT's own blocks and final norm on a subset of its tokens."""
    assert vit.is_vit(tiny) and not vit.is_vit(backbones.build("resnet_tiny"))
    enc = vit.token_encoder(tiny)
    own = {id(v) for v in tiny.weights}
    assert enc.weights and all(id(v) in own for v in enc.weights)  # shared, nothing new
    x = pixels(2, seed=5)
    cut = keras.Model(tiny.input, [tiny.get_layer("tokens").output, tiny.get_layer("norm").output])
    tokens, normed = (to_np(t) for t in cut(x, training=False))
    np.testing.assert_allclose(to_np(enc(tokens)), normed, atol=1e-5)
    some = to_np(enc(tokens[:, :5]))  # CLS and 4 patches
    assert some.shape == (2, 5, 192) and np.all(np.isfinite(some))
    with pytest.raises(ConfigError, match="not a Vision Transformer"):
        vit.token_encoder(backbones.build("resnet_tiny"))
