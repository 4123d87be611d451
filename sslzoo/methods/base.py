"""The shared SSL model: backbone → projector [→ predictor], one train step for every method.

A method subclass sets ``method``, ``recipe`` and ``defaults`` and implements ``ssl_loss``; it
may add heads in ``build_heads`` and state updates in ``after_update`` (EMA teachers, queues).

The step is written in pieces so that wrappers can recombine them (UMM's bi-level step
calls ``forward`` and ``ssl_loss`` twice with different variable sets):

    views  = make_views(x)                  # two augmented views, or given by tf.data
    out    = forward(concat(views))         # a Forward: images, features by tap, 2N rows
    loss   = ssl_loss(out, n)               # float32 scalar; state for after_update in out.state
    optimizers.step(tape, loss, *groups)    # sslzoo.optim: one gradient pass, every group
    after_update(out)                       # EMA teachers, queues, centres

Optimizers: ``param_groups`` declares what the SSL loss trains as ``sslzoo.optim.ParamGroup``s
(by default one, ``main``, on the compiled optimizer; SimSiam adds a fixed-rate predictor);
``compile`` adds the online probe's group and makes ``optimizers``, which builds, steps and
checkpoints them all.

CRR taps: ``taps`` names backbone layers (default: the four stages, pooled by the monitor,
and the projector output ``proj``); each gets a :class:`~sslzoo.crr.CRRMonitor` that measures
ΔR of the 2N views every ``crr_every`` steps, reported as ``crr/<tap>/delta_r`` (and ``r``,
``rc``). ``crr_every=0`` turns monitoring off.

An online linear probe is trained on stop-gradient pooled features of view 1 whenever the
batch has labels (label −1 means unlabeled); it is reported as ``probe_acc``.

Collapse: ``collapse_std`` is the per-dimension standard deviation over the 2N rows of the
L2-normalised projector outputs, averaged over the D dimensions (SimSiam's measure; ≈ 1/√D for
well-spread embeddings, 0 when every image maps to one point). Below ``collapse_threshold``/√D
(0.1/√D: an effective rank under ~1% of D) an absl warning names the method and the value.

State a step must update once, after the optimizer (queues, centres), is computed in
``ssl_loss``, put in ``out.state`` and read by ``after_update(out)`` (``sslzoo.methods.forward``;
UMM calls ``ssl_loss`` more than once per step and ``after_update`` once, with the outer step's
``Forward``). Schedules over the run (EMA momentum, warm-ups) read
``total_steps`` and ``steps_per_epoch``, which the pretraining code sets with
``set_training_length`` before ``fit``; 0 means unknown.

A method with ``needs_index`` (DeepCluster-v2's memory bank) trains on ``(x, y, index)``
batches, ``index`` each image's position in the training set (``ssl_batches(...,
with_index=True)``); the step hands it to ``ssl_loss`` and ``after_update`` as ``out.index``.

Multi-crop: a method whose ``local_crops`` L is > 0 (DINO's hparam) gets 2 + L views from
``view_layer`` (the two global views, then L smaller local crops of ``local_size`` px); the
step runs the local crops, concatenated, through the backbone (``local_encoder``: its layers
on an input of the local size) and the projector only, and hands their projections (L·N rows,
crop-major) to ``ssl_loss`` as ``out.local_proj``. Everything else (probe, CRR taps,
collapse_std, teachers) sees only the two global views. With L = 0 nothing of this runs.
"""
import copy
import math

import keras
import tensorflow as tf
from absl import logging
from keras import ops

from sslzoo import backbones
from sslzoo.crr.monitor import CRRMonitor, crr_logs
from sslzoo.data.augment import TwoViews, with_overrides
from sslzoo.errors import ConfigError
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.methods.forward import Forward
from sslzoo.methods.heads import mlp, synchronized_bn
from sslzoo.optim import Optimizers, ParamGroup
from sslzoo.utils.config import is_int
from sslzoo.utils.replicas import all_gather, keras_step_logs
from sslzoo.utils.seeds import seed_for

DEFAULT_TAPS = ("stage1", "stage2", "stage3", "stage4", "proj")  # a ResNet's


def default_taps(backbone):
    """The CRR taps of a model on ``backbone`` by default: its ``backbones.default_taps`` (a
    ResNet's four stages, a ViT's blocks at every quarter of its depth) and the projector."""
    return (*backbones.default_taps(backbone), "proj")
PROBE_LR = 1e-2  # the online probe's Adam rate (chosen in BUILD.md, "Pretraining")


class SSLMethod(keras.Model):
    method = "base"
    recipe = "simclr"
    defaults = {}  # the paper's hyperparameters; overridable via build(**hparams)
    vit_defaults = {}  # on a ViT backbone: the paper's ViT setting, over ``defaults``
    vit_optim_defaults = None  # on a ViT backbone: the paper's ViT optimizer, else optim_defaults
    proj_layers = 2  # Dense layers of the default projector (hidden width × (layers − 1))
    collapse_threshold = 0.1  # warn when collapse_std < collapse_threshold / √D
    total_steps = 0  # run length for schedules (set_training_length); 0 = unknown
    steps_per_epoch = 0
    local_crops = 0  # multi-crop: local crops besides the two global views (see view_layer)
    two_view_hparams = "local_crops=0"  # the --hparams that turn multi-crop off
    local_size = 0  # their side in pixels
    umm_refusal = None  # why UMM cannot wrap the method (its ConfigError says so), or None
    needs_index = False  # batches carry each image's training-set index: (x, y, index)

    def __init__(self, backbone, num_classes=None, image_size=None, augment_in_step=False,
                 taps=None, crr_every=1, crr_eps=0.5, crr_normalize=True, augment=None,
                 seed=0, **hparams):
        super().__init__(name=f"{self.method}_{backbone.name}")
        taps = default_taps(backbone) if taps is None else taps
        self._init_config = {
            "num_classes": num_classes, "image_size": image_size,
            "augment_in_step": bool(augment_in_step), "taps": list(taps),
            "crr_every": int(crr_every), "crr_eps": float(crr_eps),
            "crr_normalize": bool(crr_normalize), "augment": _recipe_config(augment),
            "seed": int(seed)}
        self.seed = int(seed)  # of the views made in the step (augment_in_step)
        self.recipe = with_overrides(self.recipe, augment)  # before any view_layer()
        defaults = self.defaults_for(backbone)
        unknown = set(hparams) - set(defaults)
        if unknown:
            raise ConfigError(f"{self.method} has no hyperparameter(s) {sorted(unknown)}; "
                              f"valid: {sorted(defaults)}")
        self.hparams = {**defaults, **hparams}
        self.backbone = backbone
        self.image_size = int(image_size or backbone.input.shape[1])
        self.num_classes = num_classes
        self.taps = tuple(taps) if crr_every else ()
        names = {layer.name for layer in backbone.layers}
        bad = [t for t in self.taps if t not in names | {"proj"}]
        if bad:
            raise ConfigError(f"unknown CRR tap(s) {bad}; valid: proj, "
                              f"{', '.join(sorted(names))}")
        outputs = {"pooled": backbone.output}
        outputs.update({t: backbone.get_layer(t).output for t in self.taps
                        if t not in ("pooled", "proj")})
        self.encoder = keras.Model(backbone.input, outputs, name="encoder")
        self.crr_every = int(crr_every)
        self.monitors = {t: CRRMonitor(crr_every, crr_eps, normalize=crr_normalize,
                                       name=f"crr_{t}") for t in self.taps}
        self.views = self.view_layer() if augment_in_step else None
        with synchronized_bn(self.sync_bn):  # the heads' BN follows the backbone's
            self.build_heads()
        if self.local_crops:
            self.local_encoder = local_encoder(backbone, self.local_size)
        self.probe = (keras.layers.Dense(num_classes, dtype="float32", name="probe")
                      if num_classes else None)
        if self.probe is not None:
            self.probe.build((None, self.feature_dim))  # its variables exist for compile
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.probe_tracker = keras.metrics.SparseCategoricalAccuracy(name="probe_acc")
        self.collapse_tracker = keras.metrics.Mean(name="collapse_std")

    @classmethod
    def defaults_for(cls, backbone):
        """The paper's hyperparameters for a backbone (a name or a model): ``defaults``, with
        ``vit_defaults`` over them on a Vision Transformer."""
        return {**cls.defaults, **(cls.vit_defaults if _is_vit(backbone) else {})}

    @classmethod
    def optim_defaults_for(cls, backbone):
        """The paper's optimizer for a backbone (a name or a model): ``vit_optim_defaults`` on a
        Vision Transformer where the method has one, else ``optim_defaults``."""
        vit_recipe = _is_vit(backbone) and cls.vit_optim_defaults
        return cls.vit_optim_defaults if vit_recipe else cls.optim_defaults

    @property
    def ssl_model(self):
        """The SSL method itself (a wrapper such as UMM returns the method it wraps)."""
        return self

    def __dir__(self):
        # keras.saving walks dir() and loads every saveable attribute with no check for
        # cycles; ssl_model is the model itself, so it is left out of the walk.
        return [name for name in super().__dir__() if name != "ssl_model"]

    @property
    def sync_bn(self):
        """Whether the backbone's BatchNorm synchronises statistics across replicas."""
        return any(getattr(layer, "synchronized", False) for layer in self.backbone.layers)

    @property
    def feature_dim(self):
        return int(self.backbone.output.shape[-1])

    def bool_hparam(self, name):
        """A boolean hparam (True/False, or 0/1 as ``--hparams=name=1`` gives)."""
        value = self.hparams[name]
        if value not in (True, False):
            raise ConfigError(f"{self.method} hparam {name} must be a boolean (or 0 / 1), got "
                              f"{value!r} (--hparams={name}=1)")
        return bool(value)

    # ----- pieces a method overrides -------------------------------------------------------
    def build_heads(self):
        """Create the heads, built (so UMM and the optimizer see their variables at once)."""
        h = self.hparams
        hidden = h.get("proj_hidden_dim") or self.feature_dim
        layers = h.get("proj_layers", self.proj_layers)
        if not is_int(layers, 1):
            raise ConfigError(f"{self.method} hparam proj_layers must be an integer >= 1 (1 is "
                              f"a linear projector), got {layers!r}")
        dims = (hidden,) * (layers - 1) + (h["proj_dim"],)
        self.projector = mlp(dims, "projector", in_dim=self.feature_dim)

    def ssl_loss(self, out, n):
        raise NotImplementedError

    def after_update(self, out):
        """State updates after the optimizer step (EMA teachers, queues, centres), from the
        ``Forward`` ``out`` whose loss was stepped (``ssl_loss`` put what they need in
        ``out.state``)."""

    def counted_forward(self):
        """What the benchmark counts as the step's forward FLOPs: a callable (images, training)
        → outputs of the pass the step differentiates. The backbone and the projector; a
        teacher or a predictor is left out (so the MFU is a lower bound for those methods)."""
        return keras.Sequential([self.backbone, self.projector])

    def view_layer(self):
        """The layer that makes this method's training views from a batch of images (used
        in tf.data, or in the step with ``augment_in_step``): two views of ``recipe``."""
        return TwoViews(self.recipe, self.image_size)

    # ----- helpers for methods with state and schedules -------------------------------------
    def set_training_length(self, total_steps, steps_per_epoch=0):
        """Tell schedules the run length (optimizer steps); call before ``fit`` traces."""
        self.total_steps, self.steps_per_epoch = int(total_steps), int(steps_per_epoch)

    def epochs_to_steps(self, epochs):
        """``epochs`` × steps_per_epoch (float); 0 with a warning when that is unknown."""
        if epochs and not self.steps_per_epoch:
            logging.log_first_n(logging.WARNING, "%s: steps_per_epoch is not set (call "
                                "set_training_length before fit): schedules in epochs are "
                                "off", 1, self.method)
        return float(epochs * self.steps_per_epoch)

    def step(self):
        """Optimizer steps taken so far (float32 scalar; 0 before ``compile``)."""
        opt = getattr(self, "optimizer", None)
        return ops.cast(opt.iterations, "float32") if opt is not None else ops.zeros(())

    @property
    def ssl_trainable_variables(self):
        """Variables the SSL loss trains: everything but the probe."""
        probe = {id(v) for v in self.probe.trainable_variables} if self.probe else set()
        return [v for v in self.trainable_variables if id(v) not in probe]

    def param_groups(self):
        """The ``sslzoo.optim.ParamGroup``s the SSL loss trains; the default is one, ``main``:
        every SSL variable on the compiled optimizer. The groups' variables are disjoint."""
        return [ParamGroup("main", self.ssl_trainable_variables)]

    # ----- shared machinery ----------------------------------------------------------------
    def compile(self, optimizer, probe_optimizer=None, **kwargs):
        """Compile with the main ``optimizer``; the probe steps on ``probe_optimizer`` (Adam at
        ``PROBE_LR`` by default). Makes ``optimizers`` from ``param_groups``."""
        super().compile(optimizer=optimizer, **kwargs)
        groups = self.param_groups()
        self.ssl_groups = tuple(g.name for g in groups)
        if self.probe is not None:
            probe_optimizer = probe_optimizer or keras.optimizers.Adam(PROBE_LR)
            groups.append(ParamGroup("probe", self.probe.trainable_variables,
                                     optimizer=probe_optimizer))
        self.optimizers = Optimizers(self.optimizer, groups)

    @property
    def probe_optimizer(self):
        return self.optimizers["probe"] if "probe" in self.optimizers else None

    def build_all(self):
        """Create every variable (model, optimizers) so checkpoints restore eagerly."""
        self.build_from_config(self.get_build_config())
        self.optimizers.build()
        self.built = True

    def get_build_config(self):
        return {"image_size": self.image_size}

    def get_compile_config(self):
        """None: a ``.keras`` file holds the model, not its optimizers (compile again after
        ``load_model``; pretraining's checkpoints hold the optimizers for ``--resume``)."""
        return None

    def build_from_config(self, config):
        """Create every model variable (heads, teachers, probe) with a pass on zeros; a
        ``.keras`` file is loaded through this."""
        x = tf.zeros((2, config["image_size"], config["image_size"], 3))
        self.forward(ops.concatenate([x, x], 0), training=False)
        if self.probe is not None:
            self.probe(tf.zeros((1, self.feature_dim)))
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # After build_all there is nothing to build. Keras's symbolic build under a strategy
        # would call the model on (view1, view2) pairs, and under MultiWorkerMirroredStrategy
        # fails to reduce the first batch (a PerReplica) to a tensor.
        if not skip_symbolic_build(self):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def checkpoint_items(self):
        """Trackables besides the model and its optimizer that a checkpoint must hold: the
        other groups' optimizers, as ``<group>_optimizer``."""
        return self.optimizers.checkpoint_items()

    def call(self, images, training=False):
        """Inference: the pooled backbone embedding."""
        return self.backbone(images, training=training)

    def forward(self, x, training=True):
        """The ``Forward`` of the 2N views ``x``: the tapped features, ``pooled`` and ``proj``
        (the views ride along so that ``ssl_loss`` can run a teacher on them)."""
        features = dict(self.encoder(x, training=training))
        features["proj"] = self.projector(features["pooled"], training=training)
        out = Forward(x, features)
        self.monitor(out, training)
        return out

    def forward_local(self, crops, training=True):
        """Projector outputs (L·N rows, crop-major) of the local crops, a list of L (N, s, s, 3)
        batches run through the backbone together at their own size."""
        pooled = self.local_encoder(ops.concatenate(crops, 0), training=training)
        return self.projector(pooled, training=training)

    def monitor(self, out, training):
        """Run the CRR monitors on the tapped features (identity; measures when training)."""
        for tap, mon in self.monitors.items():
            mon(out[tap], training=training)

    def make_views(self, x, step=None):
        """The 2 + ``local_crops`` views of a batch: given as a tuple, or made from raw
        images with the seed of (``seed``, ``step``), the optimizer step."""
        if isinstance(x, (tuple, list)):
            if len(x) != 2 + self.local_crops:
                raise ValueError(f"{self.method} expects {2 + self.local_crops} views (2 global"
                                 f" + {self.local_crops} local crops) per batch, got {len(x)}; "
                                 "make them with the model's view_layer()")
            return tuple(x)
        if self.views is None:
            raise ValueError("got raw images but the model was built with augment_in_step="
                             "False; feed (view1, view2) pairs or build with augment_in_step")
        return self.views(x, seed=None if step is None else seed_for(self.seed, "step_views",
                                                                      step))

    def unpack(self, data):
        """(x, labels, training-set indices) of a batch: ``(x, y, index)`` for a method with
        ``needs_index``, else ``(x, y)`` or ``x`` (the missing parts None)."""
        if not self.needs_index:
            x, y = data if isinstance(data, tuple) and len(data) == 2 else (data, None)
            return x, y, None
        if not (isinstance(data, tuple) and len(data) == 3):
            raise ValueError(f"{self.method} needs each image's index in the training set: "
                             "feed (views, labels, index) batches (sslzoo.data.pipeline."
                             "ssl_batches(..., with_index=True))")
        return data

    def train_step(self, data):
        x, y, index = self.unpack(data)
        v1, v2, *local = self.make_views(x, self.optimizer.iterations)
        n = ops.shape(v1)[0]
        with tf.GradientTape() as tape:
            out = self.forward(ops.concatenate([v1, v2], 0), training=True)
            out.cache["index"] = index
            if local:
                out.local_proj = self.forward_local(local)
            loss = self.ssl_loss(out, n)
        lr = ops.convert_to_tensor(self.optimizer.learning_rate)  # the rate this step uses
        self.optimizers.step(tape, loss, *self.ssl_groups)
        self.after_update(out)
        return self.update_metrics(loss, out, n, y, lr)

    def update_metrics(self, loss, out, n, y, lr):
        self.loss_tracker.update_state(loss)
        self.collapse_tracker.update_state(self.collapse_check(out.proj))
        if self.probe is not None and y is not None:
            self.train_probe(ops.stop_gradient(out.pooled[:n]), y)
        logs = {m.name: m.result() for m in self.metrics}
        logs["lr"] = lr
        if self.monitors:
            logs.update(crr_logs(self))
        return keras_step_logs(logs)

    def collapse_check(self, z):
        """collapse_std of the projector outputs ``z`` (2N, D) of the global batch; warns below
        the threshold."""
        z = l2_normalize(f32(all_gather(ops.stop_gradient(z))))  # the global batch's rows
        std = ops.mean(ops.std(z, axis=0))
        threshold = self.collapse_threshold / math.sqrt(int(z.shape[-1]))
        if tf.executing_eagerly():
            if float(std) < threshold:
                _warn_collapse(self.method, std, threshold)
        elif not (getattr(self, "jit_compile", False) is True or
                  isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy)):
            def warn():  # a host callback only on the steps that fire
                tf.py_function(lambda s: _warn_collapse(self.method, s, threshold), [std], [])
                return tf.constant(True)

            tf.cond(std < threshold, warn, lambda: tf.constant(False))
        return std

    def train_probe(self, h, y):
        h = ops.cast(h, "float32")
        y = ops.cast(y, "int32")
        w = ops.cast(y >= 0, "float32")
        y = ops.maximum(y, 0)
        with tf.GradientTape() as tape:
            logits = self.probe(h)
            ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            probe_loss = ops.sum(ce * w) / ops.maximum(ops.sum(w), 1.0)
        self.optimizers.step(tape, probe_loss, "probe")
        self.probe_tracker.update_state(y, logits, sample_weight=w)

    @property
    def metrics(self):
        ms = [self.loss_tracker]
        if self.probe is not None:
            ms.append(self.probe_tracker)
        return ms + [self.collapse_tracker]

    def get_config(self):
        """The constructor's arguments, with the backbone as its ``backbones.build`` arguments
        (any other backbone serialised with ``keras.saving``): ``from_config`` rebuilds the
        same untrained model. ``method`` names the method."""
        args = getattr(self.backbone, "build_args", None)  # a zoo backbone: its build args
        backbone = ({"build_args": dict(args)} if args else
                    keras.saving.serialize_keras_object(self.backbone))
        return {"method": self.method, "backbone": backbone, **self._init_config,
                "hparams": dict(self.hparams)}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # keras.saving consumes what it deserialises
        config.pop("method", None)
        spec = config.pop("backbone")
        backbone = (backbones.build(**spec["build_args"]) if "build_args" in spec else
                    keras.saving.deserialize_keras_object(spec))
        hparams = config.pop("hparams", {})
        return cls(backbone, **config, **hparams)


def _is_vit(backbone):
    """Whether ``backbone`` (a name or a built model) is a ViT of ``sslzoo.backbones``."""
    if isinstance(backbone, str):
        return backbone in backbones.vit.available()
    return backbones.vit.is_vit(backbone)


def _recipe_config(augment):
    """``augment`` (None, ``--augment`` text or a dict of Recipe fields) as JSON-able data."""
    if augment is None or isinstance(augment, str):
        return augment
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(augment).items()}


def local_encoder(backbone, size):
    """``backbone``'s layers (shared weights) on an input of ``size`` px (a functional
    backbone only accepts its build size); global average pooling gives features of the
    same width at any size."""
    net = keras.models.clone_model(backbone, clone_function=lambda layer: layer,
                                   input_tensors=keras.Input((size, size, 3), name="local_images"))
    return keras.Model(net.inputs, net.outputs, name=f"{backbone.name}_local")


def skip_symbolic_build(model):
    """Whether ``build_all`` has made every variable of ``model`` and its optimizer."""
    return model.built and getattr(model.optimizer, "built", False)


def _warn_collapse(method, std, threshold):
    logging.log_every_n_seconds(
        logging.WARNING, "%s: the projector embeddings look collapsed: collapse_std=%.4g < %.4g "
        "(per-dimension std of the L2-normalised outputs; ~1/sqrt(D) when well spread)", 60,
        method, float(std), threshold)
