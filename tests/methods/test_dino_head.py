"""DINO's head: no BN by default (the paper's), BN in the hidden layers with the official
code's ``use_bn_in_head`` option (a small-data setting), mirrored by the teacher."""
import numpy as np
import pytest

from sslzoo import methods
from sslzoo.errors import ConfigError

TINY = dict(proj_hidden_dim=32, proj_dim=16, out_dim=24)


def _bn_layers(head):
    return [layer.name for layer in head.layers if "bn" in layer.name]


def test_default_head_has_no_batch_norm():
    m = methods.build("dino", "resnet_tiny", image_size=16, **TINY)
    assert m.hparams["use_bn_in_head"] is False
    assert _bn_layers(m.projector) == [] and _bn_layers(m.teacher_projector) == []


@pytest.mark.parametrize("value", [True, 1])
def test_use_bn_in_head_puts_bn_in_both_hidden_layers_of_student_and_teacher(value):
    m = methods.build("dino", "resnet_tiny", image_size=16, use_bn_in_head=value, **TINY)
    names = [layer.name for layer in m.projector.layers]
    assert names == ["projector_dense1", "projector_bn1", "projector_gelu1", "projector_dense2",
                     "projector_bn2", "projector_gelu2", "projector_dense3"]
    assert _bn_layers(m.teacher_projector) == ["projector_bn1", "projector_bn2"]
    for t, s in m.teacher_pairs(trainable_only=False):  # the teacher starts as a copy
        np.testing.assert_array_equal(t.numpy(), s.numpy())


@pytest.mark.parametrize("value", ["yes", 2, None])
def test_bad_use_bn_in_head_is_a_config_error(value):
    with pytest.raises(ConfigError, match="use_bn_in_head must be a boolean"):
        methods.build("dino", "resnet_tiny", image_size=16, use_bn_in_head=value, **TINY)
