"""Every method takes a ViT backbone: default taps, one training step, UMM's split, DINO's
local crops on whole patches."""
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import backbones, methods
from sslzoo.errors import ConfigError
from sslzoo.losses.common import pooled_f32
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM
from sslzoo.umm.split import resolve_split
from tests.methods.test_zoo import TINY, VIT_ONLY

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def vit():
    return backbones.build("vit_tiny", image_size=16)


def _fit(model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 16, 16, 3)).astype("float32")
    batch = ((x[:4], x[4:]), np.arange(4) % 10)
    if model.ssl_model.needs_index:  # DeepCluster-v2's memory bank
        batch += (np.arange(4, dtype="int32"),)
    data = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    methods.set_training_length(model.ssl_model, 1, 1)
    model.compile(make_optimizer("adamw", 1e-3))
    return {k: v[-1] for k, v in model.fit(data, epochs=1, verbose=0).history.items()}


# Tracing twelve transformer blocks per method is slow on a CPU (80 s for one method in CI), so
# these are heavy checks (-m heavy); in the suite, MAE's tests and the ViT recipes' tests train
# vit_tiny.
@pytest.mark.heavy
@pytest.mark.parametrize("name", methods.available())
def test_every_method_trains_a_step_on_vit_tiny_with_block_taps(name, vit):
    heads = {k: v for k, v in {"proj_hidden_dim": 32, "proj_dim": 16}.items()
             if k in methods.get(name).defaults}  # MAE has no projector
    model = methods.build(name, vit, image_size=16, num_classes=10, **heads,
                          **{**TINY, **VIT_ONLY}.get(name, {}))
    assert model.taps == ("block3", "block6", "block9", "block12", "proj")
    logs = _fit(model)
    assert np.isfinite(logs["loss"]) and logs["crr/block12/delta_r"] > 0


def test_umm_auto_split_is_half_the_depth(vit):
    """The default split ("auto") is the second of the four default taps, on any backbone."""
    assert resolve_split(vit, "auto") == "block6_out"
    assert resolve_split(backbones.build("resnet_tiny", image_size=16), "auto") == "stage2"


@pytest.mark.heavy
def test_umm_splits_a_vit_at_a_block(vit):
    assert resolve_split(vit, "block3") == "block3_out" == resolve_split(vit, 3)
    with pytest.raises(ConfigError, match="last block"):
        resolve_split(vit, "block12")
    model = UMM(methods.build("simclr", vit, image_size=16, proj_hidden_dim=32, proj_dim=16),
                early="block3")
    logs = _fit(model)
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["umm/align"])


def test_tokens_pool_to_their_cls_token():
    tokens = np.arange(24, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_array_equal(pooled_f32(tokens), tokens[:, 0])


def test_dino_local_crops_are_whole_patches():
    net = backbones.build("vit_tiny", image_size=32)
    model = methods.build("dino", net, image_size=32, proj_hidden_dim=32, proj_dim=16,
                          out_dim=64, local_crops=2)
    assert model.local_size == 12  # 3/7 of 32 px is 13.7, rounded to 3 patches of 4
    with pytest.raises(ConfigError, match="multiple of the ViT's patch size 4"):
        methods.build("dino", net, image_size=32, out_dim=64, local_crops=2,
                      local_crops_size=14)
