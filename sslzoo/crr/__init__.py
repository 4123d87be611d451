"""Coding Rate Reduction (ΔR, MCR², Yu et al. 2020) of features, for label-free monitoring.

The math (R, Rc, ΔR, partitions) lives in ``sslzoo.losses.coding_rate`` and
``sslzoo.losses.partition``, below every method that maximises a coding rate; this package
measures it during training (monitors, the per-epoch callback, the warning) and re-exports it.
"""
from sslzoo.crr.callback import CRRCallback
from sslzoo.crr.monitor import CRRMonitor, crr_logs, monitors_of
from sslzoo.crr.warning import detect
from sslzoo.losses.coding_rate import (coding_rate, coding_rate_reduction, compressed_coding_rate,
                                       feature_map_delta_r, pair_delta_r, pair_labels)
from sslzoo.losses.partition import kmeans_labels, one_hot_membership

__all__ = ["CRRCallback", "CRRMonitor", "coding_rate", "coding_rate_reduction",
           "compressed_coding_rate", "crr_logs", "detect", "feature_map_delta_r",
           "kmeans_labels", "monitors_of", "one_hot_membership", "pair_delta_r", "pair_labels"]
