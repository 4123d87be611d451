"""``TrainableModel``: what pretraining, checkpoints and the CRR callback use of a model.

An ``SSLMethod`` meets it, and so does a wrapper of one (``sslzoo.umm.UMM``) without imitating
the method: everything about the method itself (backbone, taps, recipe, projector, view
layer) is read from ``model.ssl_model``, which is the method for an ``SSLMethod``.
"""
from typing import Protocol, runtime_checkable


@runtime_checkable
class TrainableModel(Protocol):
    """The model protocol of ``sslzoo.train``; see the module docstring."""

    @property
    def ssl_model(self):
        """The ``SSLMethod`` (itself, or the one a wrapper wraps)."""

    def compile(self, optimizer, probe_optimizer=None, **kwargs):
        """Compile with the main optimizer; makes ``optimizers`` (``sslzoo.optim``)."""

    def build_all(self):
        """Create every variable (model and optimizers), so checkpoints restore eagerly."""

    def checkpoint_items(self):
        """Trackables a checkpoint holds besides the model and its main optimizer."""

    def forward(self, x, training=True):
        """The ``sslzoo.methods.forward.Forward`` of the 2N views ``x``."""

    def train_step(self, data):
        """One step on a batch of views (and labels); returns the logs."""
