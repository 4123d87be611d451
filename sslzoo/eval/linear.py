"""Offline evaluation on frozen features: a logistic-regression linear probe."""
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
    from sslzoo.eval.knn import knn_accuracy

    tx, ty = extract_features(backbone, train_data, batch_size)
    vx, vy = extract_features(backbone, test_data, batch_size)
    return {"linear_probe_top1": linear_probe(tx, ty, vx, vy),
            "knn_top1": knn_accuracy(tx, ty, vx, vy)}
