import numpy as np
import pytest

from sslzoo import methods
from sslzoo.eval.views import agreement, measure_views, view_agreement



class SameViews:
    """A view layer that returns the images twice, unchanged."""

    def __call__(self, images, seed=None, training=True):
        return images, images


def test_agreement_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 16))
    same = agreement(a, a + 5.0)                    # a shift is removed by the centring
    assert same["same"] == pytest.approx(1.0) and same["retrieval"] == 1.0
    assert abs(same["other"]) < 0.05
    apart = agreement(a, rng.normal(size=(64, 16)))
    assert abs(apart["same"]) < 0.1 and apart["retrieval"] < 0.2
    with pytest.raises(ValueError, match="N >= 2"):
        agreement(a, a[:, :3])


def test_identical_views_agree_and_augmented_views_agree_less(monkeypatch):
    images = np.random.default_rng(1).integers(0, 256, (32, 32, 32, 3)).astype("float32")
    model = methods.build("simclr", "resnet_tiny", 32, proj_dim=16, proj_hidden_dim=32,
                          crr_every=0)   # SimCLR's own recipe: crops, flips, colour jitter
    augmented = view_agreement(model, images)["proj"]
    monkeypatch.setattr(model, "view_layer", SameViews)
    for key, got in view_agreement(model, images).items():
        assert got["retrieval"] == 1.0 and got["same"] == pytest.approx(1.0, abs=1e-4), key
    assert augmented["retrieval"] < 1.0 and augmented["same"] < 0.99


def test_measure_on_digits_reports_the_run(tfds_dir):
    got = measure_views("byol", num_images=16, augment="flip=0", data_dir=tfds_dir,
                  hparams="proj_hidden_dim=32,proj_dim=16,pred_hidden_dim=32")
    assert (got["method"], got["augment"], got["num_images"]) == ("byol", "flip=0", 16)
    for key in ("pooled", "proj"):
        assert set(got[key]) == {"same", "other", "retrieval"}
        assert 0.0 <= got[key]["retrieval"] <= 1.0 and -1.0 <= got[key]["same"] <= 1.0
