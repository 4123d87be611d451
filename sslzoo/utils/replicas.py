"""Cross-replica helpers for code that runs inside a ``tf.distribute`` replica context.

With R replicas of n rows each, replica r holds rows [r·n, (r+1)·n) of the global batch;
``all_gather`` returns every replica's rows in that order (gradients flow back to each
replica's own rows) and ``all_sum`` sums over the replicas. With one replica, or outside a
strategy, everything is the identity.

Both differentiate by summing the upstream gradients over the replicas (TensorFlow's
``ReplicaContext`` gradients), so a loss that every replica computes identically from gathered
or summed statistics, divided by R (``per_replica_loss``), gets the one-device gradient once
the optimizer sums the replicas' gradients.
"""
import tensorflow as tf
from keras import ops


def num_replicas():
    """Replicas that train in sync (1 outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else int(ctx.num_replicas_in_sync)


def all_gather(x):
    """Rows of ``x`` from every replica (``x`` itself with one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    # MultiWorkerMirroredStrategy's gather loses the static shape; keep all but the rows.
    return tf.ensure_shape(ctx.all_gather(x, axis=0), [None, *x.shape[1:]])


def all_sum(x):
    """``x`` (a tensor or a nest of them) summed over the replicas, in one batched all-reduce."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def row_offset(n):
    """Index of this replica's first row in the gathered batch: replica_id · n (int32)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return ops.zeros((), "int32")
    return ops.cast(ctx.replica_id_in_sync_group, "int32") * ops.cast(n, "int32")


def per_replica_loss(loss):
    """``loss / R``: Keras optimizers sum gradients over the R replicas, so differentiating
    this gives the gradient of the replica-average loss (Keras's own train_step does the same)."""
    r = num_replicas()
    return loss if r == 1 else loss * (1.0 / r)


def keras_step_logs(logs):
    """Logs a custom ``train_step`` can return under any strategy, and eagerly.

    Every value becomes a tensor: with ``run_eagerly=True`` Keras wraps the logs in a
    ``tf.data`` Optional, which cannot hold a variable (a monitor's last ΔR, say).
    Keras 3's fit reduces the logs of MultiWorkerMirroredStrategy with
    ``strategy.reduce(MEAN, v, axis=0)``, which fails on scalars (tensorflow#72388). There each
    scalar gets a leading axis of length 1, so that reduction averages it over the workers.
    """
    logs = {k: tf.convert_to_tensor(v) for k, v in logs.items()}
    strategy = tf.distribute.get_strategy()
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):  # Keras's own test
        return logs
    return {k: ops.reshape(v, (1,)) if len(ops.shape(v)) == 0 else v for k, v in logs.items()}
