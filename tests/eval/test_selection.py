"""sslzoo.eval.selection and apps/select.py on planted run directories with known answers."""
import json
import os

import numpy as np
import pytest

from sslzoo.errors import DataError
from sslzoo.eval.selection import analyse, markdown, plot_scores, run_points, scores_at
from tests.apps.conftest import run_app


def _study_run(root, name, method, accs, heldout, rankme, lidar=None, tap="stage4"):
    """A study run probed at epochs 5, 10, ...: ``accs`` and the curves at those epochs (the
    epochs between are filled with other values, which must not be read)."""
    d = os.path.join(root, name)
    os.makedirs(d)
    epochs = [5 * (i + 1) for i in range(len(accs))]
    n = epochs[-1]

    def curve(values):
        c = [-99.0] * n
        for e, v in zip(epochs, values):
            c[e - 1] = v
        return c
    history = {tap: {"heldout": curve(heldout), "train": curve([2.0 * h for h in heldout]),
                     "rankme": curve(rankme),
                     "lidar": curve(lidar) if lidar else [None] * n}}
    json.dump({"method": method, "epochs": n, "probe_test_split": "train[700:]"},
              open(os.path.join(d, "config.json"), "w"))
    json.dump({"history": history}, open(os.path.join(d, "crr_report.json"), "w"))
    records = [{"epoch": e, "tap": tap, "probe_acc": a} for e, a in zip(epochs, accs)]
    records += [{"epoch": e, "tap": "stage1", "probe_acc": 0.0} for e in epochs]
    json.dump({"records": records, "settings": {"probe_eval_split": "train[700:1200]"}},
              open(os.path.join(d, "study.json"), "w"))
    return d


@pytest.fixture
def grid(tmp_path):
    root = str(tmp_path)
    return [
        # simclr: held-out ΔR ranks its checkpoints exactly; RankMe backwards.
        _study_run(root, "a1", "simclr", [0.80, 0.90, 0.85], [1.0, 3.0, 2.0], [9.0, 7.0, 8.0],
                   lidar=[2.0, 3.0, 1.0]),
        _study_run(root, "a2", "simclr", [0.70, 0.75, 0.72], [0.5, 0.9, 0.7], [12.0, 10.0, 11.0],
                   lidar=[1.5, 2.5, 2.0]),
        # byol: held-out ΔR's best is its worst checkpoint.
        _study_run(root, "b1", "byol", [0.60, 0.95, 0.65], [5.0, 1.0, 2.0], [1.0, 3.0, 2.0],
                   lidar=[1.0, 4.0, 2.0]),
    ]


def test_points_read_the_probed_epochs_only(grid):
    pts = run_points(grid[0])
    assert [p["epoch"] for p in pts] == [5, 10, 15] and [p["final"] for p in pts] == [0, 0, 1]
    assert [p["scores"]["heldout_delta_r"] for p in pts] == [1.0, 3.0, 2.0]
    assert pts[1]["scores"]["gap"] == 1.0
    assert pts[0]["probe_split"] == "train[700:1200]" and pts[0]["method"] == "simclr"
    held = scores_at({"heldout": [1.0, None], "train": [2.0, 3.0]}, 2)
    assert np.isnan(held["heldout_delta_r"]) and np.isnan(held["gap"]) and np.isnan(held["rankme"])


def test_tau_rho_and_regret_have_the_planted_values(grid):
    result = analyse(grid)
    ck = result["levels"]["checkpoints"]
    simclr = ck["heldout_delta_r"]["per_method"]["simclr"]
    # Within simclr the held-out ΔR orders all 6 checkpoints as the probe does.
    assert simclr["tau"] == pytest.approx(1.0) and simclr["rho"] == pytest.approx(1.0)
    assert simclr["regret"] == pytest.approx(0.0) and simclr["pick"] == "a1@10"
    byol = ck["heldout_delta_r"]["per_method"]["byol"]
    assert byol["regret"] == pytest.approx(0.95 - 0.60) and byol["pick"] == "b1@5"
    assert ck["heldout_delta_r"]["mean_regret"] == pytest.approx((0 + 0.35) / 2)
    assert ck["heldout_delta_r"]["max_regret"] == pytest.approx(0.35)
    # Pooled, held-out ΔR picks b1@5 (5.0), 0.35 below the best (b1@10).
    assert ck["heldout_delta_r"]["pooled"]["regret"] == pytest.approx(0.35)
    # RankMe is backwards within simclr: τ = −1 over its 6 points.
    assert ck["rankme"]["per_method"]["simclr"]["tau"] == pytest.approx(-1.0)
    # The gap is minimised: train = 2 × held-out, so the gap is 1 everywhere (constant).
    assert ck["gap"]["pooled"]["tau"] is None and ck["gap"]["pooled"]["n"] == 9
    # LiDAR picks b1@10, the best checkpoint of all.
    assert ck["lidar"]["pooled"]["regret"] == pytest.approx(0.0)
    # The final level has one point a run: 0.85, 0.72, 0.65; held-out ΔR 2.0, 0.7, 2.0 (tie:
    # the first in run order, a1).
    fin = result["levels"]["final"]
    assert fin["heldout_delta_r"]["pooled"]["regret"] == pytest.approx(0.0)
    assert fin["rankme"]["pooled"]["pick"] == "a2@15"  # RankMe 11 against 8 and 2
    text = markdown(result)
    assert "| heldout_delta_r |" in text and "**final** (3 points" in text


def test_the_no_score_baseline_is_a_random_settings_last_epoch(grid):
    base = analyse(grid)["baseline"]
    # Finals 0.85 (a1), 0.72 (a2), 0.65 (b1); the best checkpoints are 0.95 of all, 0.90 of
    # simclr and 0.95 of byol.
    ck = base["checkpoints"]
    assert ck["pooled"] == pytest.approx(np.mean([0.95 - 0.85, 0.95 - 0.72, 0.95 - 0.65]))
    assert ck["per_method"]["simclr"] == pytest.approx(np.mean([0.90 - 0.85, 0.90 - 0.72]))
    assert ck["per_method"]["byol"] == pytest.approx(0.95 - 0.65)
    assert ck["mean"] == pytest.approx((0.115 + 0.30) / 2) and ck["max"] == pytest.approx(0.30)
    fin = base["final"]  # among the finals the best is 0.85
    assert fin["pooled"] == pytest.approx(np.mean([0.0, 0.13, 0.20]))
    assert fin["per_method"]["byol"] == pytest.approx(0.0)
    rows = [ln for ln in markdown(analyse(grid)).splitlines() if ln.startswith("| no score")]
    assert rows[0].endswith("| – | – | 21.00 | – | – | 20.75 / 30.00 |")  # checkpoints
    assert rows[1].endswith("| – | – | 11.00 | – | – | 3.25 / 6.50 |")  # finals


def test_a_pretrain_run_gives_its_final_checkpoint(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    json.dump({"method": "vicreg", "epochs": 2, "probe_test_split": "test"},
              open(d / "config.json", "w"))
    json.dump({"history": {"stage4": {"heldout": [1.0, 2.0], "train": [1.0, 2.5],
                                      "rankme": [3.0, 4.0], "lidar": [2.0, 2.5]}}},
              open(d / "crr_report.json", "w"))
    json.dump({"linear_probe_top1": 0.9}, open(d / "summary.json", "w"))
    (p,) = run_points(str(d))
    assert p["epoch"] == 2 and p["final"] and p["probe_acc"] == 0.9
    assert p["scores"]["rankme"] == 4.0 and p["scores"]["gap"] == pytest.approx(0.25)
    assert "a probe was scored on `test`" in markdown(analyse([str(d)]))


def test_bad_runs_are_clear_errors(tmp_path, grid):
    with pytest.raises(DataError, match="not an sslzoo run with CRR curves"):
        run_points(str(tmp_path))
    with pytest.raises(DataError, match="no CRR curves for tap 'stage9'.*stage4"):
        run_points(grid[0], tap="stage9")
    with pytest.raises(DataError, match="unknown scores"):
        analyse(grid, scores=("accuracy",))


def test_select_app_writes_json_markdown_and_plots(tmp_path, grid):
    out = tmp_path / "out"
    r = run_app("select", f"--runs={os.path.dirname(grid[0])}/[ab]*", f"--output_dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| lidar |" in r.stdout
    saved = json.loads((out / "selection.json").read_text())
    assert len(saved["points"]) == 9 and saved["tap"] == "stage4"
    for s in ("heldout_delta_r", "rankme", "lidar"):
        assert (out / f"selection_{s}.png").read_bytes()[:4] == b"\x89PNG"
    bad = run_app("select", f"--runs={tmp_path}/nothing*")
    assert bad.returncode != 0 and "matches no directory" in bad.stderr


def test_plot_scores_returns_one_png_per_score(tmp_path, grid):
    paths = plot_scores(analyse(grid, scores=("rankme",)), str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["selection_rankme.png"]


def test_a_grid_measured_in_parts_gives_the_same_analysis(tmp_path, grid):
    from sslzoo.eval.selection import earlier_points

    part = tmp_path / "part1"
    r = run_app("select", f"--runs={grid[0]},{grid[1]}", f"--output_dir={part}")
    assert r.returncode == 0, r.stderr[-2000:]
    earlier = earlier_points(str(part / "selection.json"))
    whole, parts = analyse(grid), analyse(grid[2:], earlier=earlier)
    assert parts["runs"] == whole["runs"] == 3
    assert json.dumps(parts["levels"], sort_keys=True) == json.dumps(whole["levels"],
                                                                      sort_keys=True)
    with pytest.raises(DataError, match="appears twice"):
        analyse(grid[:1], earlier=earlier)
    with pytest.raises(DataError, match="not 'stage1'"):
        earlier_points(str(part / "selection.json"), tap="stage1")
    with pytest.raises(DataError, match="not a readable selection.json"):
        earlier_points(str(tmp_path / "missing.json"))
    out = tmp_path / "all"
    r = run_app("select", f"--runs={grid[2]}", f"--points={part / 'selection.json'}",
                f"--output_dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(json.loads((out / "selection.json").read_text())["points"]) == 9
