"""sslzoo.bench.epoch_cost: the per-epoch CRR callback timed against an epoch."""
import pytest

from sslzoo.bench.epoch_cost import markdown, run_epoch_cost

pytestmark = pytest.mark.slow


def test_epoch_cost_tiny_run(tfds_dir):
    r = run_epoch_cost(batch_size=64, reference_size=16, lidar_images=8, lidar_views=4,
                       steps=1, warmup=1, repeats=2, data_dir=tfds_dir)
    runs = r["runs"]
    assert set(runs) == {"step", "crr_callback", "crr_callback_quality"}
    assert all(len(v) == 2 and min(v) > 0 for v in runs.values())
    assert r["epoch_seconds"] == pytest.approx(r["steps_per_epoch"] * sorted(runs["step"])[0]
                                               / 2 + r["steps_per_epoch"]
                                               * sorted(runs["step"])[1] / 2)
    assert r["quality_share"] == pytest.approx(
        (r["crr_callback_quality_seconds"] - r["crr_callback_seconds"]) / r["epoch_seconds"])
    assert r["settings"]["reference_size"] == 16 and r["steps_per_epoch"] > 1
    assert r["targets"]["quality_share"]["met"] == (r["quality_share"] <= 0.03)
    assert "RankMe + LiDAR, share of the epoch" in markdown(r)
