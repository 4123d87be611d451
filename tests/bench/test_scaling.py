"""sslzoo.bench.scaling: the log-log slopes, the ΔR grid and the tap timing, and
``apps/benchmark.py --scaling`` end to end on a tiny grid (slow)."""
import json
import math

import numpy as np
import pytest

from sslzoo import methods
from sslzoo.bench.scaling import (delta_r_grid, grid_slopes, growth, loglog_slope, markdown,
                                  run_scaling, tap_delta_r_seconds)
from sslzoo.errors import ConfigError
from tests.apps.conftest import run_app


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0, 3.4])
def test_loglog_slope_recovers_known_exponents(p):
    rng = np.random.default_rng(int(10 * p))
    x = np.array([64, 128, 256, 512, 1024])
    y = 3e-4 * x ** p * np.exp(rng.normal(0, 0.02, x.size))  # ±2% noise
    assert loglog_slope(x, y) == pytest.approx(p, abs=0.05)
    g = growth(x[::-1], y[::-1])  # any order: "last" is between the two largest x
    assert g["fit"] == pytest.approx(p, abs=0.05)
    assert g["last"] == pytest.approx(np.log(y[-1] / y[-2]) / np.log(2))
    # A fixed cost plus a cubic term: the overall fit flattens, the last segment does not.
    g = growth(x, 1.0 + 1e-7 * x ** 3.0)
    assert g["fit"] == pytest.approx(1.70, abs=0.01) and g["last"] == pytest.approx(2.91, abs=0.01)


def test_slopes_reject_what_they_cannot_fit():
    assert growth([64], [1.0]) is None
    with pytest.raises(ConfigError, match="two distinct"):
        loglog_slope([8, 8], [1.0, 2.0])
    with pytest.raises(ConfigError, match="positive"):
        loglog_slope([8, 16], [1.0, 0.0])


def test_grid_slopes_per_width_and_per_batch_and_the_worst():
    batches, widths = (64, 128, 256, 512), (128, 512, 2048)
    cells = [{"batch": n, "width": d, "seconds": 1e-9 * n ** 1.5 * d ** 2.0}
             for n in batches for d in widths]
    in_batch, in_width, worst = grid_slopes(cells)
    assert [s["width"] for s in in_batch] == list(widths)
    assert [s["batch"] for s in in_width] == list(batches)
    for s in in_batch:
        assert s["fit"] == pytest.approx(1.5) and s["last"] == pytest.approx(1.5)
    for s in in_width:
        assert s["fit"] == pytest.approx(2.0)
    assert worst == pytest.approx(1.5)
    cubic = [dict(c, seconds=c["batch"] ** 3.2) for c in cells]
    assert grid_slopes(cubic)[2] == pytest.approx(3.2)


def test_delta_r_grid_times_every_cell_on_the_cheaper_side():
    cells = delta_r_grid([4, 8], [8, 32], repeats=2, warmup=1)
    assert [(c["batch"], c["width"]) for c in cells] == [(4, 8), (4, 32), (8, 8), (8, 32)]
    # 2n rows against d: the Gram matrix is min(2n, d) square.
    assert [c["gram_side"] for c in cells] == ["d", "m", "d", "m"]
    assert [c["gram_size"] for c in cells] == [8, 8, 8, 16]
    for c in cells:
        assert c["rows"] == 2 * c["batch"] and len(c["runs"]) == 2
        assert c["seconds"] == pytest.approx(float(np.median(c["runs"])))
        assert 0 < c["seconds"] < 5


def test_tap_delta_r_covers_every_tap_at_the_batch():
    model = methods.build("simclr", "resnet_tiny", image_size=16)
    seconds, runs, shapes = tap_delta_r_seconds(model, 4, repeats=2, warmup=1)
    assert list(shapes) == list(model.taps) == ["stage1", "stage2", "stage3", "stage4", "proj"]
    assert shapes["stage1"] == (8, 16, 16, 16) and shapes["proj"] == (8, 128)
    assert len(runs) == 2 and 0 < seconds < 5
    # The model's own monitors are not touched (the timing uses copies).
    assert all(int(m.calls.value) == 0 for m in model.monitors.values())


def test_run_scaling_rejects_bad_settings_before_measuring():
    with pytest.raises(ConfigError, match="batches"):
        run_scaling(batches=[1, 8])
    with pytest.raises(ConfigError, match="widths"):
        run_scaling(widths=[])
    with pytest.raises(ConfigError, match=">= 1"):
        run_scaling(steps=0)


@pytest.mark.slow
def test_scaling_app_tiny_grid(tmp_path):
    out = tmp_path / "scaling"
    proc = run_app("benchmark", "--scaling", "--scaling_batches=8,4", "--scaling_widths=8,16",
                   "--scaling_steps=1", "--scaling_warmup=1", "--scaling_repeats=1",
                   "--scaling_delta_r_repeats=1", "--image_size=16", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "scaling.json").read_text())
    dr, s = result["delta_r"], result["settings"]
    assert (s["batches"], s["widths"], s["backbone"]) == ([4, 8], [8, 16], "resnet_tiny")
    assert len(dr["cells"]) == 4 and all(c["seconds"] > 0 for c in dr["cells"])
    assert [r["width"] for r in dr["slopes_in_batch"]] == [8, 16]
    assert [r["batch"] for r in dr["slopes_in_width"]] == [4, 8]
    assert math.isfinite(dr["max_batch_slope"]) and isinstance(dr["sub_cubic"], bool)
    assert [r["batch"] for r in result["step"]["records"]] == [4, 8]
    for r in result["step"]["records"]:
        assert set(r["step_seconds"]) == {"sslzoo", "sslzoo_crr_off"}
        assert all(v > 0 for v in r["step_seconds"].values())
        assert r["delta_r_taps_seconds"] > 0 and 0 < r["delta_r_fraction"]
    assert set(result["step"]["slopes_in_batch"]) == {"sslzoo", "sslzoo_crr_off",
                                                     "delta_r_taps"}
    assert result["machine"]["cpu_cores"] >= 1
    md = (out / "scaling.md").read_text()
    assert md == markdown(result)
    assert "| n (2n rows) | d=8 | d=16 | slope in d |" in md and "| 4 (8) |" in md
    assert "sub-cubic" in md and "| slope in batch |" in md
    assert "## Step time vs batch" in proc.stdout
    assert sorted(f.name for f in out.iterdir()) == ["scaling.json", "scaling.md"]  # no .tmp-

def test_scaling_app_rejects_a_bad_grid_before_importing_tensorflow(tmp_path):
    proc = run_app("benchmark", "--scaling", "--scaling_batches=8,x",
                   f"--output_dir={tmp_path}/bad", timeout=60)
    assert proc.returncode == 1 and "comma-separated integers" in proc.stderr
    assert not (tmp_path / "bad").exists()
