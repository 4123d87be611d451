"""``Forward``: what a model's ``forward`` gives for the views of one step, and the step's state.

The step's protocol (``SSLMethod.train_step``; UMM recombines the same pieces):

    out  = model.forward(views)      # Forward: images, features by tap, local_proj
    loss = model.ssl_loss(out, n)    # float32 scalar; state for after_update goes to out.state
    ... optimizer step ...
    model.after_update(out)          # EMA teachers, queues and centres read out.state

``state`` holds what ``ssl_loss`` computed that the update after the optimizer step needs (the
keys a queue takes in, the teacher outputs a centre moves towards); ``after_update`` receives
the ``Forward`` of the loss that was stepped. ``cache`` is what the forwards of one batch
share: the images' training-set indices (``index``, for a method with ``needs_index``) and
memos (UMM's inner and outer steps reuse one teacher pass and one k-means).
"""
import dataclasses


@dataclasses.dataclass
class Forward:
    """The outputs of ``forward`` on 2N views (view 1's rows first).

    Attributes:
      images: the views themselves (a teacher runs on them).
      features: tap name → features: the tapped backbone blocks, ``pooled`` (the backbone's
        embedding) and ``proj`` (the projector's output).
      local_proj: the projector outputs of the local crops (L·N rows, crop-major), or None
        without multi-crop.
      state: what ``ssl_loss`` hands to ``after_update`` (name → tensor).
      cache: shared by the forwards of one batch within a step: ``"index"`` and memos.
    """
    images: object
    features: dict
    local_proj: object = None
    state: dict = dataclasses.field(default_factory=dict)
    cache: dict = dataclasses.field(default_factory=dict)

    @property
    def proj(self):
        return self.features["proj"]

    @property
    def pooled(self):
        return self.features["pooled"]

    @property
    def index(self):
        """The training-set index of each image of the batch (N,), when the batch carries it
        (``SSLMethod.needs_index``), else None."""
        return self.cache.get("index")

    def __getitem__(self, tap):
        """The features at ``tap`` (a block name, ``pooled`` or ``proj``)."""
        return self.features[tap]

    def needs(self, name, method):
        """``state[name]``, or a clear error when ``ssl_loss`` did not put it there."""
        if name not in self.state:
            raise RuntimeError(f"{method}: after_update needs {name!r} in the Forward's state; "
                               "call ssl_loss on this Forward first in the same step")
        return self.state[name]
