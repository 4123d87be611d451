"""SSL losses: pure functions over keras.ops; arrays in, a float32 scalar out."""
from sslzoo.losses.simclr import simclr_loss

__all__ = ["simclr_loss"]
