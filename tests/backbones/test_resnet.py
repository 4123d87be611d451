"""Backbones: shapes, named stages, stems, parameter counts, serialisation, errors, bf16."""
import keras
import numpy as np
import pytest

from sslzoo.backbones import STAGES, available, build
from sslzoo.errors import ConfigError

FEATURE_DIM = {"resnet18": 512, "resnet50": 2048, "resnet_tiny": 128, "resnet_small": 256}
# Trainable parameters of torchvision's ResNets without the fc head, 3×3 CIFAR stem
# (the 7×7 stem adds 7·7·3·64 − 3·3·3·64 = 7680).
TORCH_PARAMS_CIFAR = {"resnet18": 11_168_832, "resnet50": 23_500_352}
TINY_PARAMS = 307_536
to_np = keras.ops.convert_to_numpy


def n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def spatial(model, layer):
    shape = model.get_layer(layer).output.shape
    return shape[1], shape[2]


def pixels(n, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny():
    return build("resnet_tiny")


@pytest.fixture(scope="module")
def r18():
    return build("resnet18")


@pytest.fixture(scope="module")
def r50():
    return build("resnet50")


@pytest.fixture
def mixed_policy(request):
    """The global dtype policy ``request.param`` (indirect parametrisation), float32 after."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_registry_and_stage_names():
    assert [n for n in available() if n.startswith("resnet")] == [
        "resnet18", "resnet50", "resnet_small", "resnet_tiny"]  # ViTs: test_vit.py
    small = build("resnet_small")
    assert small.get_layer("stage1").output.shape[-1] == 32 and small.output.shape[-1] == 256
    assert STAGES == ("stage1", "stage2", "stage3", "stage4", "pooled")


@pytest.mark.parametrize(
    "name, fixture, batch",
    [("resnet_tiny", "tiny", 3), ("resnet18", "r18", 2), ("resnet50", "r50", 1)],
)
def test_output_shape_and_model_identity(name, fixture, batch, request):
    model = request.getfixturevalue(fixture)
    assert model.name == name
    assert model.input.name == "images" and tuple(model.input.shape) == (None, 32, 32, 3)
    assert model.output.shape[-1] == FEATURE_DIM[name]
    y = to_np(model(pixels(batch), training=False))
    assert y.shape == (batch, FEATURE_DIM[name])
    assert np.all(np.isfinite(y)) and np.all(y >= 0)  # pooled post-ReLU maps
    assert model.get_layer("pooled").output is model.output


@pytest.mark.parametrize("fixture", ["tiny", "r18", "r50"])
def test_cifar_stage_sizes_and_widths(fixture, request):
    model = request.getfixturevalue(fixture)
    width = FEATURE_DIM[model.name] // 8
    for i, stage in enumerate(STAGES[:4]):
        assert spatial(model, stage) == (32 >> i, 32 >> i)
        assert model.get_layer(stage).output.shape[-1] == width << i
        assert isinstance(model.get_layer(stage), keras.layers.Activation)


def test_imagenet_stem_stage_sizes():
    model = build("resnet_tiny", image_size=64, stem="imagenet")
    assert [spatial(model, s) for s in STAGES[:4]] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert model.get_layer("pooled").output.shape[-1] == 128


@pytest.mark.parametrize(
    "size, kernel, strides, pool, stage1",
    [(32, 3, 1, False, 32), (64, 3, 1, False, 64), (96, 7, 2, True, 24), (224, 7, 2, True, 56)],
)
def test_auto_stem(size, kernel, strides, pool, stage1):
    model = build("resnet_tiny", image_size=size)
    conv = model.get_layer("stem_conv")
    assert conv.kernel_size == (kernel, kernel) and conv.strides == (strides, strides)
    names = {layer.name for layer in model.layers}
    assert ("stem_pool" in names) == pool
    assert spatial(model, "stage1") == (stage1, stage1)


def test_explicit_stem_overrides_auto():
    forced = build("resnet_tiny", image_size=32, stem="imagenet")
    assert forced.get_layer("stem_conv").strides == (2, 2)
    assert spatial(build("resnet_tiny", image_size=128, stem="cifar"), "stage4") == (16, 16)


def test_parameter_counts(tiny, r18, r50):
    for model in (r18, r50):
        expected = TORCH_PARAMS_CIFAR[model.name]
        assert n_trainable(model) == expected  # exact torchvision parity
        assert abs(n_trainable(model) - expected) / expected < 0.01
    assert abs(n_trainable(r18) - 11.17e6) / 11.17e6 < 0.01
    assert abs(n_trainable(r50) - 23.5e6) / 23.5e6 < 0.01
    assert n_trainable(tiny) == TINY_PARAMS and 200_000 < TINY_PARAMS < 500_000
    imagenet18 = build("resnet18", image_size=224)
    assert n_trainable(imagenet18) == TORCH_PARAMS_CIFAR["resnet18"] + 7680


def test_preprocess_maps_pixels_to_unit_range(tiny):
    layer = tiny.get_layer("preprocess")
    assert tiny.layers[1] is layer  # first layer after the input
    out = to_np(layer(np.array([[0.0, 127.5, 255.0]], "float32")))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]], atol=1e-6)


def test_uint8_input_equals_float_input(tiny):
    x = pixels(2).round()
    a = to_np(tiny(x.astype("uint8"), training=False))
    b = to_np(tiny(x, training=False))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_layer_names_and_hyperparameters(r18, r50):
    for name in ["stem_conv", "stem_bn", "stage1_block2_conv2", "stage2_block1_conv1",
                 "stage2_block1_bn1", "stage2_block1_proj_conv", "stage2_block1_proj_bn",
                 "stage4_block2_add"]:
        r18.get_layer(name)
    names = {layer.name for layer in r18.layers}
    assert "stage1_block1_proj_conv" not in names  # identity shortcut when shapes match
    assert "stage1_block1_proj_conv" in {layer.name for layer in r50.layers}  # 64 -> 256
    assert r50.get_layer("stage3_block6_conv3").filters == 1024
    # Stride on the 3×3 conv (v1.5), symmetric padding as in PyTorch.
    assert r50.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert r50.get_layer("stage2_block1_conv2").strides == (2, 2)
    assert r50.get_layer("stage2_block1_conv2_pad").padding == ((1, 1), (1, 1))
    for layer in r18.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert not layer.use_bias and layer.kernel_regularizer is None
            assert isinstance(layer.kernel_initializer, keras.initializers.HeNormal)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.momentum == 0.9 and layer.epsilon == 1e-5 and not layer.synchronized


def test_sync_bn():
    model = build("resnet_tiny", sync_bn=True)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 12 and all(bn.synchronized for bn in bns)


def every_weight_gets_gradient(model, batch):
    """Whether Σ model(x)² has a nonzero gradient for every trainable weight."""
    import tensorflow as tf

    x = tf.constant(pixels(batch))
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(model(x, training=True) ** 2)
    grads = tape.gradient(loss, model.trainable_weights)
    return all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_gradients_reach_every_weight(tiny):
    assert every_weight_gets_gradient(tiny, 4)


def test_get_config_round_trip(tiny):
    clone = keras.Model.from_config(tiny.get_config())
    assert [l.name for l in clone.layers] == [l.name for l in tiny.layers]
    clone.set_weights(tiny.get_weights())
    x = pixels(2, seed=1)
    np.testing.assert_allclose(
        to_np(clone(x, training=False)), to_np(tiny(x, training=False)), atol=1e-6
    )


def test_keras_save_load(tiny, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.name == "resnet_tiny"
    x = pixels(2, seed=2)
    np.testing.assert_allclose(
        to_np(loaded(x, training=False)), to_np(tiny(x, training=False)), atol=1e-6
    )


def test_unknown_backbone_lists_choices():
    with pytest.raises(ConfigError, match="resnet18, resnet50, resnet_small, resnet_tiny") as err:
        build("resnet101")
    assert "resnet101" in str(err.value)


def test_unknown_stem_lists_choices():
    with pytest.raises(ConfigError, match="auto, cifar, imagenet"):
        build("resnet_tiny", stem="vit")


@pytest.mark.parametrize("size", [7, 0, -32, 32.0, "32", True])
def test_bad_image_size(size):
    with pytest.raises(ConfigError, match="image_size"):
        build("resnet_tiny", image_size=size)


def test_smallest_image_size_runs():
    for stem in ("cifar", "imagenet"):
        model = build("resnet_tiny", image_size=8, stem=stem)
        assert to_np(model(pixels(1, size=8), training=False)).shape == (1, 128)


@pytest.mark.parametrize("mixed_policy", ["mixed_bfloat16"], indirect=True)
def test_mixed_bfloat16(mixed_policy):
    model = build("resnet_tiny")
    assert model.get_layer("stage2_block1_conv1").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    y = model(pixels(2), training=True)
    assert str(y.dtype) in ("bfloat16", "<dtype: 'bfloat16'>")
    y = to_np(keras.ops.cast(y, "float32"))
    assert y.shape == (2, 128) and np.all(np.isfinite(y))


def test_policy_restored_after_bf16():
    assert keras.mixed_precision.global_policy().name == "float32"
    assert build("resnet_tiny").get_layer("stem_conv").compute_dtype == "float32"
