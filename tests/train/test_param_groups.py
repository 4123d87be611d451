"""``sslzoo.optim.Optimizers``: parameter groups as data, one mechanism for several optimizers."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo.errors import ConfigError
from sslzoo.optim import MAIN, Optimizers, ParamGroup, Rate, warmup_cosine


def _vars():
    kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
    bias = keras.Variable(np.ones(2, "float32"), name="bias")
    other = keras.Variable(np.ones((2, 2), "float32"), name="other")
    return kernel, bias, other


def test_rates_derive_from_the_main_optimizer():
    kernel, bias, other = _vars()
    main = keras.optimizers.SGD(warmup_cosine(0.4, 100, 10), momentum=0.9, weight_decay=1e-4)
    probe = keras.optimizers.Adam(1e-2)
    opts = Optimizers(main, [ParamGroup("main", [kernel, bias]),
                             ParamGroup("fixed", [other], Rate.peak()),
                             ParamGroup("half", [other], Rate.follow(0.5)),
                             ParamGroup("probe", [other], optimizer=probe)])
    assert opts["main"] is main and opts["probe"] is probe
    assert float(main.learning_rate) == 0.0  # step 0 of the warm-up
    assert float(opts["fixed"].learning_rate) == pytest.approx(0.4)
    assert isinstance(opts["half"], keras.optimizers.SGD) and opts["half"].momentum == 0.9
    main.iterations.assign(5)
    assert float(opts["half"].learning_rate) == pytest.approx(0.5 * float(main.learning_rate))
    assert float(opts["half"].learning_rate) > 0
    assert set(opts.checkpoint_items()) == {"fixed_optimizer", "half_optimizer",
                                            "probe_optimizer"}


def test_build_exempts_biases_from_weight_decay_and_keeps_a_built_main():
    kernel, bias, other = _vars()
    main = keras.optimizers.AdamW(0.1, weight_decay=0.5)
    main.build([kernel, bias, other])
    slots = [v.numpy().copy() for v in main.variables]
    opts = Optimizers(main, [ParamGroup("outer", [kernel]),
                             ParamGroup("inner", [kernel, bias], Rate.follow())])
    opts.build()  # the built main keeps its slots
    assert len(main.variables) == len(slots)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(kernel * 0.0) + tf.reduce_sum(bias * 0.0)
    opts.step(tape, loss, "inner")  # zero gradient: only the decoupled weight decay moves
    assert np.all(kernel.numpy() < 1.0)
    np.testing.assert_array_equal(bias.numpy(), np.ones(2))


def test_step_takes_several_groups_on_one_pass():
    kernel, bias, other = _vars()
    main = keras.optimizers.SGD(1.0)
    opts = Optimizers(main, [ParamGroup("a", [kernel]),
                             ParamGroup("b", [other], Rate.follow(0.5))])
    opts.build()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(kernel) + tf.reduce_sum(other)
    opts.step(tape, loss, "a", "b")
    np.testing.assert_allclose(kernel.numpy(), np.zeros((2, 2)))
    np.testing.assert_allclose(other.numpy(), np.full((2, 2), 0.5))


def test_bad_groups_are_refused():
    kernel, _, _ = _vars()
    main = keras.optimizers.SGD(0.1)
    with pytest.raises(ConfigError, match="unique"):
        Optimizers(main, [ParamGroup("a", [kernel]), ParamGroup("a", [kernel], MAIN)])
    with pytest.raises(ConfigError, match="learning-rate rule"):
        Optimizers(main, [ParamGroup("a", [kernel], Rate("halved"))])
