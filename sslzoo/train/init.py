"""Start a model from pretrained backbone weights (``--init_from``): a zoo name, a run or
entry directory, or a ``.weights.h5`` file (see `sslzoo.zoo`)."""
from sslzoo import zoo


def load_backbone(backbone, init_from):
    """Load ``init_from``'s weights into ``backbone``; a clear WeightsError if they don't fit.
    Returns the weights path."""
    label = f"--init_from {init_from}"
    src = zoo.resolve(init_from, backbone=backbone.name)
    zoo.verify(src.weights, src.card.get("sha256"), label)
    return zoo.strict_load(backbone, src.weights, label)
