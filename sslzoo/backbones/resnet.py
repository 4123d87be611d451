"""ResNet-18/50 and a tiny ResNet as functional Keras models (He et al. 2016, arXiv 1512.03385).

Input convention: feed **raw pixels in [0, 255]** (uint8 cast to float, or float), shape
(N, image_size, image_size, 3). The first layer, `Rescaling(1/127.5, offset=-1)` named
"preprocess", maps them to [-1, 1]; do not normalise beforehand.

The model's single output is the global-average-pooled embedding (N, feature_dim), with
feature_dim = model.output.shape[-1]. Intermediate maps are tapped by layer name:
"stage1" … "stage4" (the last ReLU of each stage) and "pooled".
"""
import keras
from keras import layers

from sslzoo.backbones import blocks
from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.utils.config import is_int

STAGES = ("stage1", "stage2", "stage3", "stage4", "pooled")
STEMS = ("auto", "cifar", "imagenet")
MIN_IMAGE_SIZE = 8
CIFAR_STEM_MAX_SIZE = 64  # "auto" uses the CIFAR stem up to this image size.

# name -> (block function, blocks per stage, stage widths, stem width)
_SPECS = {
    "resnet18": (blocks.basic_block, (2, 2, 2, 2), (64, 128, 256, 512), 64),
    "resnet50": (blocks.bottleneck_block, (3, 4, 6, 3), (64, 128, 256, 512), 64),
    "resnet_tiny": (blocks.basic_block, (1, 1, 1, 1), (16, 32, 64, 128), 16),
    # One basic block per stage at twice tiny's widths: big enough to memorise a few hundred
    # images (the layer-wise study), small enough for a CPU.
    "resnet_small": (blocks.basic_block, (1, 1, 1, 1), (32, 64, 128, 256), 32),
}


def available():
    """Names accepted by `build`."""
    return sorted(_SPECS)


def _check_image_size(image_size):
    if not is_int(image_size):
        raise ConfigError(
            f"image_size must be an int, got {image_size!r} ({type(image_size).__name__}); "
            "pass the side of the square input in pixels, e.g. 32"
        )
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}; "
            "upscale the images or use a larger image_size"
        )


def resolve_stem(stem_name, image_size):
    """The concrete stem: "auto" becomes "cifar" for image_size <= 64, else "imagenet"."""
    if stem_name not in STEMS:
        raise unknown_choice("stem", stem_name, STEMS)
    if stem_name == "auto":
        return "cifar" if image_size <= CIFAR_STEM_MAX_SIZE else "imagenet"
    return stem_name


def build(name, image_size=32, stem="auto", sync_bn=False):
    """A ResNet backbone `name` as a functional keras.Model named `name`.

    Input "images": (N, image_size, image_size, 3) pixels in [0, 255].
    Output: pooled features (N, feature_dim); 512 (resnet18), 2048 (resnet50), 128 (tiny),
    256 (small).
    Stages 2-4 halve the spatial size in their first block. `sync_bn=True` synchronises
    BatchNorm statistics across replicas of a distribution strategy. The model's
    ``build_args`` are this call's arguments (the stem resolved).
    """
    if name not in _SPECS:
        raise unknown_choice("backbone", name, available())
    _check_image_size(image_size)
    stem_kind = resolve_stem(stem, image_size)
    block, depths, widths, stem_width = _SPECS[name]

    images = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0, name="preprocess")(images)
    x = blocks.stem(x, stem_kind, stem_width, sync_bn)
    for s, (depth, width) in enumerate(zip(depths, widths), start=1):
        for b in range(1, depth + 1):
            strides = 2 if (s > 1 and b == 1) else 1
            out_name = f"stage{s}" if b == depth else f"stage{s}_block{b}_out"
            x = block(x, width, strides, f"stage{s}_block{b}", out_name, sync_bn=sync_bn)
    pooled = layers.GlobalAveragePooling2D(name="pooled")(x)
    model = keras.Model(images, pooled, name=name)
    model.build_args = {"name": name, "image_size": image_size, "stem": stem_kind,
                        "sync_bn": bool(sync_bn)}  # what rebuilds it (an SSL model's config)
    return model

