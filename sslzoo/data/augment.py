"""Two-view augmentation ("views") and DINO's multi-crop, from stateless ops.

A recipe follows SimCLR / MoCo v2 (Chen et al. 2020) in torchvision terms:

- random resized crop, area scale ``crop_scale`` (default 0.2–1), aspect 3/4–4/3;
- horizontal flip, p = 0.5;
- colour jitter (brightness, contrast, saturation, hue) = (0.4, 0.4, 0.4, 0.1), p = 0.8;
- grayscale, p = 0.2;
- Gaussian blur and solarisation, per view, where a method's paper uses them.

Brightness is additive, ±0.4·255 (as in SimCLR v1's TensorFlow code); contrast and
saturation are ×U[0.6, 1.4]; hue ±0.1 of the hue circle (``sslzoo.data.image_ops``).

Every op is a pure function of the images and a seed, so the views of a training batch are
a function of the run seed and the step (``sslzoo.utils.seeds``): a run is reproducible and a
resumed run draws the same views. Without a seed, a layer draws one from its own
``keras.random.SeedGenerator`` (for interactive use).

Images are float in [0, 255] in and out; the backbone's first layer rescales them.
Small images (≤ 64 px, the "CIFAR recipe") get no blur, as in the SimCLR CIFAR setting.
"""
import dataclasses
import functools

import keras
import tensorflow as tf

from sslzoo.data import image_ops
from sslzoo.errors import ConfigError, unknown_choice


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One augmentation recipe; ``blur`` and ``solarize`` are per-view probabilities."""

    crop_scale: tuple = (0.2, 1.0)
    flip: bool = True
    jitter: tuple = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur: tuple = (0.0, 0.0)
    solarize: tuple = (0.0, 0.0)


RECIPES = {
    # SimCLR / MoCo v2: symmetric, blur with p = 0.5 on large images.
    "simclr": Recipe(blur=(0.5, 0.5)),
    # BYOL (Grill et al. 2020): asymmetric blur (1.0, 0.1) and solarisation (0, 0.2).
    "byol": Recipe(crop_scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1), blur=(1.0, 0.1),
                   solarize=(0.0, 0.2)),
    # EMP-SSL (Tong et al. 2023, the official patch transform): patches of a quarter of the
    # image (aspect 3/4–4/3 here, 1 there), jitter hue 0.2, blur and solarisation with p = 0.1
    # (blur only above 64 px, as for every view).
    "emp_ssl": Recipe(crop_scale=(0.25, 0.25), jitter=(0.4, 0.4, 0.4, 0.2), blur=(0.1, 0.1),
                      solarize=(0.1, 0.1)),
}


def get_recipe(name):
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise unknown_choice("augmentation recipe", name, RECIPES)
    return RECIPES[name]


_PAIRS = {"crop_scale": "MIN:MAX, 0 < MIN <= MAX <= 1", "blur": "P1:P2 (view 1, view 2)",
          "solarize": "P1:P2 (view 1, view 2)", "jitter": "B:C:S:H"}


def parse_augment(text):
    """Overrides of a recipe's fields from ``'crop_scale=0.5:1,flip=0,solarize=0:0'``: a
    tuple field takes ``:``-separated numbers, ``flip`` 0 or 1, the rest a probability."""
    fields = [f.name for f in dataclasses.fields(Recipe)]
    out = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in fields:
            raise ConfigError(f"--augment entry {item!r} is not FIELD=VALUE with a recipe "
                              f"field ({', '.join(fields)})")
        try:
            nums = tuple(float(v) for v in value.split(":"))
        except ValueError:
            nums = ()
        width = len(getattr(Recipe(), key)) if key in _PAIRS else 1
        ok = len(nums) == width and all(n >= 0 for n in nums)
        if key == "flip":
            ok = ok and nums[0] in (0, 1)
        elif key == "crop_scale":
            ok = ok and 0 < nums[0] <= nums[1] <= 1
        elif key != "jitter":
            ok = ok and all(n <= 1 for n in nums)
        if not ok:
            want = _PAIRS.get(key, "0 or 1" if key == "flip" else "a probability in [0, 1]")
            raise ConfigError(f"--augment {key}={value!r}: expected {want}")
        out[key] = bool(nums[0]) if key == "flip" else nums if key in _PAIRS else nums[0]
    return out


def with_overrides(recipe, overrides):
    """``recipe`` (a name or Recipe) with ``overrides`` (a dict, or ``parse_augment`` text)."""
    if isinstance(overrides, str):
        overrides = parse_augment(overrides)
    elif overrides:  # from a JSON config: lists back to the Recipe's tuples
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(get_recipe(recipe), **overrides) if overrides else recipe


@dataclasses.dataclass(frozen=True)
class ViewOp:
    """One step of a view: ``fn(x, seed)`` from ``image_ops``, applied with probability ``p``."""

    name: str
    fn: object
    p: float = 1.0

    def __call__(self, x, seed):
        return image_ops.random_apply(self.fn, self.p, x, seed)


def view_pipeline(recipe, image_size, view=0):
    """The ops, applied in order, that produce one view ([0, 255] floats)."""
    r = get_recipe(recipe)
    b, c, s, h = r.jitter
    ops = [ViewOp("crop", functools.partial(image_ops.resized_crop, size=image_size,
                                            scale=r.crop_scale))]
    if r.flip:
        ops.append(ViewOp("flip", image_ops.flip))
    if r.jitter_p > 0:
        ops.append(ViewOp("jitter", functools.partial(
            image_ops.color_jitter, brightness=b, contrast=c, saturation=s, hue=h), r.jitter_p))
    if r.gray_p > 0:
        ops.append(ViewOp("gray", image_ops.grayscale, r.gray_p))
    blur_p = r.blur[view] if image_size > 64 else 0.0
    if blur_p > 0:
        k = max(3, (image_size // 10) | 1)  # ~10% of the image, odd
        ops.append(ViewOp("blur", functools.partial(image_ops.gaussian_blur, kernel_size=k),
                          blur_p))
    if r.solarize[view] > 0:
        ops.append(ViewOp("solarize", image_ops.solarize, r.solarize[view]))
    return ops


def apply_view(ops, images, seed):
    """One view: ``images`` (cast to float32) through a ``view_pipeline``'s ops, float32."""
    v = tf.cast(images, "float32")
    for op, s in zip(ops, tf.unstack(image_ops.split_seed(seed, len(ops)))):
        v = op(v, s)
    return v


class TwoViews(keras.layers.Layer):
    """uint8 or float images (N, S, S, 3) → two independently augmented float32 views."""

    def __init__(self, recipe="simclr", image_size=32, **kwargs):
        super().__init__(**kwargs)
        self.recipe = recipe if isinstance(recipe, str) else None
        self._recipe = get_recipe(recipe)
        self.image_size = int(image_size)
        self.views = self.pipelines()
        self.seed_generator = keras.random.SeedGenerator()

    def pipelines(self):
        """One list of ops per view (``view_pipeline``), in output order."""
        return [view_pipeline(self._recipe, self.image_size, v) for v in (0, 1)]

    def call(self, images, seed=None, training=True):
        """The views of ``images``; ``seed`` (shape (2,)) fixes them, else the layer's own
        generator draws one."""
        if seed is None:
            seed = self.seed_generator.next()
        x = tf.cast(images, "float32")
        seeds = tf.unstack(image_ops.split_seed(seed, len(self.views)))
        return tuple(apply_view(ops, x, s) for ops, s in zip(self.views, seeds))

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.image_size, self.image_size, 3)
        return shape, shape

    def get_config(self):
        return {**super().get_config(), "recipe": self.recipe, "image_size": self.image_size}


class MultiCrop(TwoViews):
    """Multi-crop (SwAV, Caron et al. 2020; DINO, arXiv 2104.14294): images (N, S, S, 3) → the
    two global views at ``image_size`` followed by ``local_crops`` local crops at
    ``local_size`` (float32, [0, 255]).

    Global views follow ``recipe`` (views 0 and 1: DINO's asymmetric blur and solarisation)
    with crop area ``global_scale``; local crops take the recipe's flip, jitter and grayscale,
    crop area ``local_scale``, blur with p = ``local_blur`` (only above 64 px, as for every
    view) and no solarisation, as in DINO's ``DataAugmentationDINO``. Paper defaults at 224 px:
    global (0.4, 1), 8 local crops of 96 px at (0.05, 0.4).
    """

    def __init__(self, recipe="byol", image_size=32, local_crops=8, local_size=14,
                 global_scale=(0.4, 1.0), local_scale=(0.05, 0.4), local_blur=0.5, **kwargs):
        self.local_crops, self.local_size = int(local_crops), int(local_size)
        self.global_scale, self.local_scale = tuple(global_scale), tuple(local_scale)
        self.local_blur = float(local_blur)
        super().__init__(recipe, image_size, **kwargs)

    def pipelines(self):
        r = self._recipe
        glob = dataclasses.replace(r, crop_scale=self.global_scale)
        loc = dataclasses.replace(r, crop_scale=self.local_scale, blur=(self.local_blur,) * 2,
                                  solarize=(0.0, 0.0))
        return ([view_pipeline(glob, self.image_size, v) for v in (0, 1)] +
                [view_pipeline(loc, self.local_size) for _ in range(self.local_crops)])

    def compute_output_shape(self, input_shape):
        local = (input_shape[0], self.local_size, self.local_size, 3)
        return super().compute_output_shape(input_shape) + (local,) * self.local_crops

    def get_config(self):
        return {**super().get_config(), "local_crops": self.local_crops,
                "local_size": self.local_size, "global_scale": self.global_scale,
                "local_scale": self.local_scale, "local_blur": self.local_blur}


class ManyViews(TwoViews):
    """images (N, S, S, 3) → ``views`` ≥ 2 views, all of ``recipe`` at ``image_size`` (view v
    takes the recipe's settings of view v mod 2), for methods that contrast many views of each
    image (MMCR)."""

    def __init__(self, recipe="simclr", image_size=32, views=2, **kwargs):
        self.num_views = int(views)
        if self.num_views < 2:
            raise ConfigError(f"ManyViews needs views >= 2, got {views!r}")
        super().__init__(recipe, image_size, **kwargs)

    def pipelines(self):
        return [view_pipeline(self._recipe, self.image_size, v % 2)
                for v in range(self.num_views)]

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(input_shape)[:1] * self.num_views

    def get_config(self):
        return {**super().get_config(), "views": self.num_views}
