"""Probes of frozen features: a logistic-regression linear probe and a weighted kNN.

The kNN is InstDisc's (Wu et al. 2018): features are L2-normalised; test sample x takes its k
most cosine-similar fit samples x_i and votes for class c with weight Σ_{i: y_i = c} exp(s_i / τ),
s_i = x·x_i (k = 20, τ = 0.07).
"""
import numpy as np

from sslzoo.data.pipeline import eval_batches


def extract_features(backbone, data, batch_size=256):
    """(features float32 (N, D), labels int (N,)) of a backbone on an unaugmented split."""
    feats, labels = [], []
    for x, y in eval_batches(data, batch_size):
        feats.append(np.asarray(backbone(x, training=False), dtype=np.float32))
        labels.append(y.numpy())
    return np.concatenate(feats), np.concatenate(labels)


def linear_probe(train_x, train_y, test_x, test_y, c=1.0, max_iter=2000):
    """Top-1 accuracy of multinomial logistic regression (L2, strength 1/c) fitted on
    standardised train features and scored on the test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit(scaler.transform(train_x), train_y)
    return float(clf.score(scaler.transform(test_x), test_y))


def probe_backbone(backbone, train_data, test_data, batch_size=256):
    """Linear-probe accuracy of a frozen backbone: fit on ``train_data``, score on ``test_data``."""
    tx, ty = extract_features(backbone, train_data, batch_size)
    vx, vy = extract_features(backbone, test_data, batch_size)
    return linear_probe(tx, ty, vx, vy)


def evaluate_backbone(backbone, train_data, test_data, batch_size=256):
    """{"linear_probe_top1", "knn_top1"} of a frozen backbone on the same features."""
    tx, ty = extract_features(backbone, train_data, batch_size)
    vx, vy = extract_features(backbone, test_data, batch_size)
    return {"linear_probe_top1": linear_probe(tx, ty, vx, vy),
            "knn_top1": knn_accuracy(tx, ty, vx, vy)}


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
