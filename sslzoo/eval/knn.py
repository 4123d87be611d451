"""Weighted k-nearest-neighbour classifier on frozen features (Wu et al. 2018, InstDisc).

Features are L2-normalised; test sample x takes its k most cosine-similar fit samples x_i and
votes for class c with weight Σ_{i: y_i = c} exp(s_i / τ), s_i = x·x_i (k = 20, τ = 0.07).
"""
import numpy as np


def knn_accuracy(fit_x, fit_y, test_x, test_y, k=20, temperature=0.07, chunk=1024):
    """Top-1 accuracy of the weighted kNN vote of ``test_x`` among ``fit_x``."""
    def norm(x):
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    fit_x, test_x = norm(fit_x), norm(test_x)
    fit_y, test_y = np.asarray(fit_y), np.asarray(test_y)
    k = min(k, len(fit_x))
    classes = int(max(fit_y.max(), test_y.max())) + 1
    correct = 0
    for i in range(0, len(test_x), chunk):
        sims = test_x[i:i + chunk] @ fit_x.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(sims, top, axis=1) / temperature)
        votes = np.zeros((len(top), classes))
        np.add.at(votes, (np.arange(len(top))[:, None], fit_y[top]), weights)
        correct += int((votes.argmax(axis=1) == test_y[i:i + chunk]).sum())
    return correct / len(test_x)
