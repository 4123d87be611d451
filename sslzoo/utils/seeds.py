"""Stateless seeds: every random draw of a run is a function of (run seed, stream, index).

A stream names one use (the views of a training batch, the CRR reference views, a pass's
shuffle); the index is the global step or the pass. Nothing random keeps hidden state, so
the same seed gives the same run, and a run resumed at step k draws what it would have
drawn at step k had it never stopped.
"""
import tensorflow as tf

STREAMS = {"views": 1, "step_views": 2, "crr_reference": 3, "shuffle": 4, "probe_views": 5,
           "lidar_views": 6, "wmse": 7, "kmeans": 8, "mae_mask": 9}


def seed_for(run_seed, stream, index=0):
    """A shape-(2,) int64 seed for ``tf.random.stateless_*``; ``index`` may be a tensor."""
    base = tf.constant([int(run_seed), STREAMS[stream]], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def scalar_seed(run_seed, stream, index=0):
    """A non-negative int64 scalar seed (tf.data's ``shuffle`` takes one)."""
    return tf.math.floormod(seed_for(run_seed, stream, index)[0], 2 ** 31 - 1)
