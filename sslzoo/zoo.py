"""The model zoo: pretrained backbones loaded in one line.

    import sslzoo
    sslzoo.list_models()                          # ['byol_resnet_tiny_digits', ...]
    net = sslzoo.load("simclr_resnet_tiny_digits")
    emb = net(uint8_images)                       # (N, 128) pooled embeddings

**Entries.** An entry is a folder ``<name>/`` holding ``backbone.weights.h5`` (or, for a
backbone above ``SHARD_BYTES``, Keras's sharded ``backbone.weights.json`` index with its
``backbone_NNNNN.weights.h5`` shards of about that size), optionally
``projector.weights.h5``, and ``card.json`` (method, backbone, dataset, image size, the full
pretraining config, the command that made it, the CRR summary, the date, ``sha256`` of each
weights file (for a sharded backbone, ``{file name: sha256}`` of the index and every shard) and
``metrics`` {linear_top1, knn_top1}). A sslzoo-pretrain run directory has the
same ``backbone.weights.h5`` (and ``projector.weights.h5``) beside its ``config.json``, so
``load`` takes a zoo name, an entry folder, a run directory, or a ``.weights.h5`` file whose
folder holds a card or config (otherwise pass ``backbone=``).

**Where names are looked up**, first match wins: the folders in ``$SSLZOO_WEIGHTS``
(``os.pathsep``-separated), the source tree's ``weights/``, then
``<sys.prefix>/share/sslzoo/weights`` (where the wheel installs the shipped entries).

**Preprocessing is built in.** The model takes (N, S, S, 3) pixels in [0, 255], uint8 or
float, with S the card's ``image_size``; it casts to float32 and its "preprocess" layer maps
them to [-1, 1]. Do not normalise beforehand.

**Verification.** Entry weights are checked against the card's sha256 before loading, and a
file whose variables do not match the architecture is refused (`WeightsError`), never
partially loaded.
"""
import dataclasses
import hashlib
import os
import sys
import warnings

from sslzoo.errors import WeightsError
from sslzoo.utils.config import parse_hparams
from sslzoo.utils.io import read_json

BACKBONE_FILE = "backbone.weights.h5"
SHARDED_BACKBONE_FILE = "backbone.weights.json"  # Keras's index of a sharded backbone
# A backbone file above this is sharded, with this as Keras's shard size; Keras closes a shard
# after the variable that passes it, so shards reach ~4.4 MB on a ViT, under the 5 MiB limit
# that entries keep to.
SHARD_BYTES = 4_000_000
PROJECTOR_FILE = "projector.weights.h5"
CARD_FILE = "card.json"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.json"  # the SSL model, serialised with keras.saving (a run's; a card's "model")


def weights_dirs():
    """Folders searched for zoo names, in order."""
    env = [p for p in os.environ.get("SSLZOO_WEIGHTS", "").split(os.pathsep) if p]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return env + [os.path.join(here, "weights"),
                  os.path.join(sys.prefix, "share", "sslzoo", "weights")]


def _entries():
    found = {}
    for folder in weights_dirs():
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name not in found and os.path.isfile(os.path.join(path, CARD_FILE)):
                found[name] = path
    return found


def list_models():
    """Names of the zoo entries that `load` accepts, sorted."""
    return sorted(_entries())


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_sharded(path):
    """Whether ``path`` is the ``.weights.json`` index of sharded Keras weights."""
    return str(path).endswith(".weights.json")


def weights_files(path, label=None):
    """The files of weights ``path``: itself, or a sharded index and the shards it names."""
    if not is_sharded(path):
        return [path]
    try:
        shards = sorted({f for files in _read(path)["weight_map"].values()  # a name or a list
                         for f in ([files] if isinstance(files, str) else files)})
    except (KeyError, AttributeError, TypeError) as e:
        raise WeightsError(f"{label or path}: {path} is not a Keras sharded-weights index "
                           f"({type(e).__name__}); restore it or re-export the entry") from e
    files = [os.path.join(os.path.dirname(path), f) for f in shards]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise WeightsError(f"{label or path}: the shard(s) {missing} named by {path} are "
                           "missing; the entry is incomplete. Re-download or re-export it")
    return [path, *files]


def digests(path, label=None):
    """The sha256 a card records for weights ``path``: one digest for a single file,
    {file name: sha256} over a sharded index and its shards."""
    if not is_sharded(path):
        return sha256(path)
    return {os.path.basename(f): sha256(f) for f in weights_files(path, label)}


@dataclasses.dataclass
class Source:
    """A resolved backbone source: where its weights are and how to rebuild its model."""
    kind: str                  # "entry", "run" or "file"
    path: str
    weights: str
    backbone: str
    image_size: int
    stem: str = "auto"
    projector: str = ""        # projector weights file, "" if none
    config: dict = dataclasses.field(default_factory=dict)   # the pretraining config
    card: dict = dataclasses.field(default_factory=dict)
    model: object = None       # the serialised SSL model (dict), or the model.json holding it


def _read(path):
    try:
        return read_json(path)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path} is unreadable or not JSON ({e}); restore it or re-export "
                           "the entry") from e


def _from_folder(folder, label, backbone=None, image_size=None):
    card_path, config_path = (os.path.join(folder, n) for n in (CARD_FILE, CONFIG_FILE))
    weights = os.path.join(folder, BACKBONE_FILE)
    if not os.path.isfile(weights) and os.path.isfile(os.path.join(folder, SHARDED_BACKBONE_FILE)):
        weights = os.path.join(folder, SHARDED_BACKBONE_FILE)
    if os.path.isfile(card_path):
        kind, card = "entry", _read(card_path)
        config, model = card.get("config", {}), card.get("model")
    elif os.path.isfile(config_path):
        kind, card, config = "run", {}, _read(config_path)
        model = os.path.join(folder, MODEL_FILE)  # read when needed: the backbone does not
        model = model if os.path.isfile(model) else None
        summary = os.path.join(folder, SUMMARY_FILE)
        if os.path.isfile(summary):
            card = {"image_size": _read(summary).get("image_size")}
    else:
        raise WeightsError(f"{label}: {folder} has neither {CARD_FILE} (a zoo entry) nor "
                           f"{CONFIG_FILE} (a sslzoo-pretrain run); give a zoo name "
                           f"({', '.join(list_models()) or 'none installed'}), an entry or run "
                           "folder, or a .weights.h5 file with backbone=")
    if not os.path.isfile(weights):
        raise WeightsError(f"{label}: {folder} has no {BACKBONE_FILE}; the run did not finish "
                           "or the entry is incomplete")
    projector = os.path.join(folder, PROJECTOR_FILE)
    size = image_size or card.get("image_size") or config.get("image_size") or 32
    return Source(kind=kind, path=folder, weights=weights,
                  backbone=backbone or card.get("backbone") or config.get("backbone"),
                  image_size=int(size), stem=card.get("stem") or config.get("stem", "auto"),
                  projector=projector if os.path.isfile(projector) else "",
                  config=config, card=card, model=model)


def resolve(name_or_path, backbone=None, image_size=None):
    """The `Source` of a zoo name, entry folder, run directory or .weights.h5 file."""
    label = str(name_or_path)
    entries = _entries()
    if label in entries:
        return _from_folder(entries[label], label, backbone, image_size)
    path = os.path.expanduser(label)
    if os.path.isdir(path):
        return _from_folder(path, label, backbone, image_size)
    if os.path.isfile(path):
        if not (path.endswith(".weights.h5") or is_sharded(path)):
            raise WeightsError(f"{label}: expected a .weights.h5 file (or a sharded "
                               ".weights.json index) saved by sslzoo")
        folder = os.path.dirname(os.path.abspath(path))
        if any(os.path.isfile(os.path.join(folder, n)) for n in (CARD_FILE, CONFIG_FILE)):
            src = _from_folder(folder, label, backbone, image_size)
            same = os.path.abspath(src.weights) == os.path.abspath(path)
            src.kind, src.weights = ("file", path) if not same else (src.kind, src.weights)
            if not same:
                src.card = {k: v for k, v in src.card.items() if "sha256" not in k}
            return src
        if not backbone:
            raise WeightsError(f"{label}: a bare weights file; pass backbone= (and image_size=) "
                               "to say which architecture it holds")
        return Source(kind="file", path=path, weights=path, backbone=backbone,
                      image_size=int(image_size or 32))
    raise WeightsError(f"{label}: not a zoo name, folder or weights file. Zoo names: "
                       f"{', '.join(entries) or 'none found'} (searched {weights_dirs()}; set "
                       "SSLZOO_WEIGHTS to add a folder)")


def verify(path, expected, label):
    """Refuse weights ``path`` unless their ``digests`` equal the card's (None: unchecked)."""
    if not expected:
        return
    found = digests(path, label)
    if isinstance(expected, str) and found != expected:
        raise WeightsError(f"{label}: {path} fails its sha256 check (card says {expected[:12]}…)"
                           "; the file is corrupt or was replaced. Re-download or re-export it; "
                           "nothing was loaded")
    if isinstance(expected, dict) and found != expected:
        bad = sorted(f for f in {*found, *expected} if found.get(f) != expected.get(f))
        raise WeightsError(f"{label}: the sharded weights {path} fail their sha256 check "
                           f"({', '.join(bad)} differ from the card); they are corrupt or were "
                           "replaced. Re-download or re-export them; nothing was loaded")


def strict_load(model, path, label):
    """``model.load_weights(path)``, refusing any file whose variables do not all match."""
    import h5py

    stored = []
    for file in weights_files(path, label)[is_sharded(path):]:
        try:
            with h5py.File(file, "r") as f:
                f.visit(lambda k: stored.append(tuple(f[k].shape))
                        if isinstance(f[k], h5py.Dataset) and "/vars/" in k else None)
        except OSError as e:
            raise WeightsError(f"{label}: {file} is not a readable weights file ({e}); it is "
                               "corrupt or truncated") from e
    expected = [tuple(w.shape) for w in model.weights]
    if sorted(stored) != sorted(expected):
        raise WeightsError(f"{label}: {path} holds {len(stored)} variables whose shapes do not "
                           f"match {model.name}'s {len(expected)}; it is from another "
                           "architecture (pass the matching backbone and image size)")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*[Ss]kipping.*")
            model.load_weights(path)
    except Exception as e:  # h5py/keras raise OSError, ValueError, KeyError or a warning here
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise WeightsError(f"{label}: {path} does not load into {model.name} "
                           f"({type(e).__name__}: {first}); it is corrupt or from another "
                           "architecture or image size") from e
    return path


def build_backbone(src, pool=None):
    """The (untrained) backbone a `Source` describes; a ViT reads out ``pool`` ("cls" or
    "mean", `sslzoo.backbones.vit.build`) when it is given."""
    from sslzoo import backbones  # lazy: TensorFlow (resolve, list_models stay light)

    if not src.backbone:
        raise WeightsError(f"{src.path}: its card/config does not name a backbone")
    return backbones.build(src.backbone, image_size=src.image_size, stem=src.stem, pool=pool)


def model_spec(src):
    """The serialised SSL model of ``src`` (a dict), or None when none is stored."""
    return _read(src.model) if isinstance(src.model, str) else src.model


def ssl_model(src, label):
    """The untrained SSL model (heads included, CRR monitoring off) that ``src`` was trained
    as: rebuilt from its serialised config (``model.json``, a card's ``"model"``), or, for runs
    and entries made before those existed, from the method and hparams of its config."""
    import keras  # lazy: TensorFlow (resolve, list_models stay light)

    from sslzoo import methods  # lazy: TensorFlow; it also registers the method classes

    spec = model_spec(src)
    if spec:
        spec = {**spec, "config": {**spec.get("config", {}), "crr_every": 0}}
        try:
            model = keras.saving.deserialize_keras_object(spec, safe_mode=True)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            model = e
        if not isinstance(model, methods.SSLMethod):
            why = f"{type(model).__name__}: {model}"[:300]
            raise WeightsError(f"{label}: its model config does not rebuild a sslzoo model "
                               f"({why}); it is corrupt or from a newer sslzoo")
        return model
    if not src.config:
        raise WeightsError(f"{label}: no model config ({MODEL_FILE} or a card) is stored")
    return methods.build(src.config.get("method", "simclr"), src.backbone,
                         image_size=src.image_size, stem=src.stem, crr_every=0,
                         **parse_hparams(src.config.get("hparams", "")))


def _projector(src, label):
    if not src.projector or not (src.model or src.config):
        raise WeightsError(f"{label}: no projector weights (projector.weights.h5 with a config) "
                           "are stored; use include_projector=False")
    model = ssl_model(src, label)
    verify(src.projector, src.card.get("projector_sha256"), label)
    strict_load(model.projector, src.projector, label)
    return model.projector


def load(name_or_path, include_projector=False, backbone=None, image_size=None, pool=None):
    """A functional Keras model, images → pooled embedding (→ projector output with
    ``include_projector``), with pretrained weights. See the module docstring for what
    ``name_or_path`` may be and for the input convention. ``pool`` ("cls" or "mean") picks a
    ViT's readout (default: the CLS token); a ResNet takes none."""
    import keras

    label = str(name_or_path)
    src = resolve(name_or_path, backbone, image_size)
    verify(src.weights, src.card.get("sha256"), label)
    net = build_backbone(src, pool)
    strict_load(net, src.weights, label)
    images = keras.Input((src.image_size, src.image_size, 3), name="images")
    x = net(keras.ops.cast(images, "float32"))
    if include_projector:
        x = _projector(src, label)(x)
    name = os.path.basename(os.path.normpath(src.path))
    name = name.replace(".weights.h5", "").replace(".weights.json", "")
    model = keras.Model(images, x, name=f"sslzoo_{name}".replace("-", "_").replace(".", "_"))
    model.sslzoo_source = src
    return model
