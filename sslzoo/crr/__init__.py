"""Coding Rate Reduction (ΔR, MCR², Yu et al. 2020) of features, for label-free monitoring."""
from sslzoo.crr.coding_rate import (coding_rate, coding_rate_reduction, compressed_coding_rate,
                                    feature_map_delta_r, pair_delta_r, pair_labels)
from sslzoo.crr.partition import kmeans_labels, one_hot_membership

__all__ = ["coding_rate", "coding_rate_reduction", "compressed_coding_rate",
           "feature_map_delta_r", "kmeans_labels", "one_hot_membership", "pair_delta_r",
           "pair_labels"]
