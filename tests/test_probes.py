"""The weighted kNN classifier against a brute-force reference."""
import numpy as np

from sslzoo.probes import knn_accuracy


def _reference(fx, fy, tx, ty, k, t):
    fx = fx / np.linalg.norm(fx, axis=1, keepdims=True)
    tx = tx / np.linalg.norm(tx, axis=1, keepdims=True)
    hits = 0
    for x, y in zip(tx, ty):
        s = fx @ x
        idx = np.argsort(-s)[:k]
        votes = {}
        for i in idx:
            votes[fy[i]] = votes.get(fy[i], 0.0) + np.exp(s[i] / t)
        hits += max(votes, key=votes.get) == y
    return hits / len(ty)


def test_matches_brute_force_and_separates_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    fy, ty = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    fx = centres[fy] + 0.8 * rng.normal(size=(60, 8))
    tx = centres[ty] + 0.8 * rng.normal(size=(25, 8))
    got = knn_accuracy(fx, fy, tx, ty, k=5, temperature=0.1, chunk=7)
    assert got == _reference(fx, fy, tx, ty, 5, 0.1)
    assert knn_accuracy(centres[fy], fy, centres[ty], ty) == 1.0
    assert knn_accuracy(fx, rng.permutation(fy), tx, ty) < 0.8
