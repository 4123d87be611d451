"""``WeightSnapshots``: the recent epochs' weights in memory, so CRR's early stop can restore the
best-by-CRR epoch."""
import numpy as np


class WeightSnapshots:
    """Weights of the last ``patience`` + 2 epochs and of the held-out ΔR peak so far."""

    def __init__(self, patience):
        self.patience = int(patience)
        self._weights = {}

    def keep(self, epoch, weights, heldout_curve):
        """Hold ``weights`` of 0-based ``epoch``; drop those no longer within reach."""
        curve = np.asarray(heldout_curve, dtype="float64")
        peak = int(np.nanargmax(curve)) if np.isfinite(curve).any() else epoch
        self._weights[epoch] = weights
        for e in list(self._weights):
            if e != peak and e < epoch - self.patience - 1:
                del self._weights[e]

    def get(self, epoch):
        """The weights of ``epoch``, or None when they are no longer (or never were) held."""
        return self._weights.get(epoch)
