"""ResNet v1 building blocks (He et al. 2016, arXiv 1512.03385) as functional-API helpers.

Each helper takes a Keras tensor and returns one, naming every layer from a `prefix` so that
checkpoints load without renaming. The stride of a downsampling block sits on its 3×3 conv (the
"v1.5" placement of torchvision and solo-learn). Stride-2 convolutions pad explicitly by
k // 2 pixels and use "valid" padding, which matches PyTorch's symmetric padding exactly.
"""
import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1 in Keras terms (weight on the old running value).
BN_EPSILON = 1e-5


def conv(x, filters, kernel_size, strides, name):
    """A bias-free He-normal convolution; strided ones get PyTorch-style symmetric padding."""
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def batch_norm(x, name, sync_bn=False):
    """BatchNormalization with PyTorch's defaults; `sync_bn` syncs statistics across replicas."""
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=sync_bn, name=name
    )(x)


def _shortcut(x, filters, strides, prefix, sync_bn):
    """Identity, or a 1×1 strided conv + BN projection when the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    x = conv(x, filters, 1, strides, f"{prefix}_proj_conv")
    return batch_norm(x, f"{prefix}_proj_bn", sync_bn)


def basic_block(x, width, strides, prefix, out_name, sync_bn=False):
    """y = ReLU(BN(conv3×3(ReLU(BN(conv3×3_s(x))))) + shortcut(x)), with `width` channels."""
    shortcut = _shortcut(x, width, strides, prefix, sync_bn)
    y = conv(x, width, 3, strides, f"{prefix}_conv1")
    y = batch_norm(y, f"{prefix}_bn1", sync_bn)
    y = layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = conv(y, width, 3, 1, f"{prefix}_conv2")
    y = batch_norm(y, f"{prefix}_bn2", sync_bn)
    y = layers.Add(name=f"{prefix}_add")([shortcut, y])
    return layers.Activation("relu", name=out_name)(y)


def bottleneck_block(x, width, strides, prefix, out_name, sync_bn=False, expansion=4):
    """y = ReLU(BN(conv1×1↑(ReLU(BN(conv3×3_s(ReLU(BN(conv1×1↓(x))))))) + shortcut(x)).

    The 1×1 convs reduce to `width` channels and expand back to `expansion * width`.
    """
    out = expansion * width
    shortcut = _shortcut(x, out, strides, prefix, sync_bn)
    y = conv(x, width, 1, 1, f"{prefix}_conv1")
    y = batch_norm(y, f"{prefix}_bn1", sync_bn)
    y = layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = conv(y, width, 3, strides, f"{prefix}_conv2")
    y = batch_norm(y, f"{prefix}_bn2", sync_bn)
    y = layers.Activation("relu", name=f"{prefix}_relu2")(y)
    y = conv(y, out, 1, 1, f"{prefix}_conv3")
    y = batch_norm(y, f"{prefix}_bn3", sync_bn)
    y = layers.Add(name=f"{prefix}_add")([shortcut, y])
    return layers.Activation("relu", name=out_name)(y)


def stem(x, kind, width, sync_bn=False):
    """`cifar`: 3×3 conv s1, BN, ReLU. `imagenet`: 7×7 conv s2, BN, ReLU, 3×3 max-pool s2."""
    if kind == "cifar":
        x = conv(x, width, 3, 1, "stem_conv")
    else:
        x = conv(x, width, 7, 2, "stem_conv")
    x = batch_norm(x, "stem_bn", sync_bn)
    x = layers.Activation("relu", name="stem_relu")(x)
    if kind == "imagenet":
        # Zero padding equals PyTorch's -inf padding here because the input is post-ReLU (≥ 0).
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


__all__ = ["basic_block", "bottleneck_block", "stem", "conv", "batch_norm"]
