"""Label-free model selection, measured: each per-epoch score of the CRR callback against the
labelled probe, over a grid of runs (``sslzoo-select``).

A *point* is one checkpoint of one run: its probe accuracy at the chosen tap and the scores
the callback logged at that epoch. A study run (``study.json``) gives one point per probed
epoch; a pretraining run gives one, its final epoch, with ``summary.json``'s linear probe.

For each score s, with its sense (the gap is minimised, every other score maximised), over
the points with a finite s:

- Kendall τ and Spearman ρ between s (sign-adjusted) and probe accuracy, pooled and within
  each method (RankMe's paper ranks within a method);
- the selection regret: max probe accuracy − the probe accuracy of the point s picks, pooled
  (pick among every point) and within each method (pick among that method's points).

Both are reported at two levels: every checkpoint, and the final checkpoint of each run.
"""
import math
import os

import numpy as np

from sslzoo.errors import DataError
from sslzoo.utils.figures import pyplot, save_png
from sslzoo.utils.io import read_json

SCORES = ("heldout_delta_r", "train_delta_r", "gap", "rankme", "lidar")
LOG_KEYS = {"heldout_delta_r": "crr/{}/heldout_delta_r", "train_delta_r": "crr/{}/train_delta_r",
            "gap": "crr/{}/gap", "rankme": "rankme/{}", "lidar": "lidar/{}"}
LEVELS = ("checkpoints", "final")


def sense(score):
    """+1 where a higher score should mean a better model, −1 for the memorisation gap."""
    return -1.0 if score == "gap" else 1.0


def _at(curve, epoch):
    """The curve's value at a 1-based epoch, NaN if absent or null."""
    if curve is None or not 1 <= epoch <= len(curve) or curve[epoch - 1] is None:
        return math.nan
    return float(curve[epoch - 1])


def scores_at(history, epoch):
    """{score: value} of one tap's ``crr_report.json`` curves at a 1-based epoch."""
    held, train = _at(history.get("heldout"), epoch), _at(history.get("train"), epoch)
    gap = (train - held) / max(abs(held), 1e-8) if math.isfinite(held + train) else math.nan
    return {"heldout_delta_r": held, "train_delta_r": train, "gap": gap,
            "rankme": _at(history.get("rankme"), epoch), "lidar": _at(history.get("lidar"), epoch)}


def run_points(run_dir, tap="stage4"):
    """The points of one run directory (see the module docstring)."""
    def path(name):
        return os.path.join(run_dir, name)

    if not os.path.exists(path("crr_report.json")) or not os.path.exists(path("config.json")):
        raise DataError(f"{run_dir} is not an sslzoo run with CRR curves: it needs config.json "
                        "and crr_report.json (pretrain with --crr_reference_size > 0)")
    config, report = read_json(path("config.json")), read_json(path("crr_report.json"))
    history = report["history"].get(tap)
    if history is None:
        raise DataError(f"{run_dir} has no CRR curves for tap {tap!r}; it has "
                        f"{', '.join(report['history'])}: pick one with --tap")
    base = {"run": os.path.basename(os.path.normpath(run_dir)), "method": config["method"]}
    if os.path.exists(path("study.json")):
        study = read_json(path("study.json"))
        records = sorted((r for r in study["records"] if r["tap"] == tap),
                         key=lambda r: r["epoch"])
        split = study["settings"]["probe_eval_split"]
        acc = [(r["epoch"], r["probe_acc"]) for r in records]
    elif os.path.exists(path("summary.json")):
        summary = read_json(path("summary.json"))
        if "linear_probe_top1" not in summary:
            raise DataError(f"{run_dir}/summary.json has no linear probe: the run had no labels")
        split = config["probe_test_split"]
        acc = [(int(config["epochs"]), summary["linear_probe_top1"])]
    else:
        raise DataError(f"{run_dir} is unfinished: it has neither study.json nor summary.json")
    if not acc:
        raise DataError(f"{run_dir} has no probe records at tap {tap!r}")
    last = max(e for e, _ in acc)
    return [{**base, "epoch": int(e), "final": e == last, "probe_acc": float(a),
             "probe_split": split, "scores": scores_at(history, int(e))} for e, a in acc]


def _corr(x, y):
    """{"tau", "rho", "n"} of finite pairs; None where fewer than 3 or a constant series."""
    from scipy.stats import kendalltau, spearmanr  # lazy: SciPy loads only for the analysis

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"tau": None, "rho": None, "n": int(ok.sum())}
    if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        out.update(tau=float(kendalltau(x, y).statistic), rho=float(spearmanr(x, y).statistic))
    return out


def _pick(points, score):
    """(regret, the picked point) of selecting among ``points`` by ``score``; (None, None) if
    no point has a finite score."""
    scored = [p for p in points if math.isfinite(p["scores"][score])]
    if not scored:
        return None, None
    best = max(p["probe_acc"] for p in points)
    pick = max(scored, key=lambda p: sense(score) * p["scores"][score])
    return best - pick["probe_acc"], pick


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def analyse_level(points, scores=SCORES):
    """{score: {pooled: {tau, rho, n, regret, pick}, per_method: {m: {...}}, mean_tau,
    mean_regret, max_regret}} over one level's points."""
    methods = sorted({p["method"] for p in points})
    out = {}
    for s in scores:
        def stats(pts):
            c = _corr([sense(s) * p["scores"][s] for p in pts], [p["probe_acc"] for p in pts])
            regret, pick = _pick(pts, s)
            return {**c, "regret": regret,
                    "pick": None if pick is None else f"{pick['run']}@{pick['epoch']}"}
        per = {m: stats([p for p in points if p["method"] == m]) for m in methods}
        regrets = [v["regret"] for v in per.values() if v["regret"] is not None]
        out[s] = {"pooled": stats(points), "per_method": per,
                  "mean_tau": _mean(v["tau"] for v in per.values()),
                  "mean_regret": _mean(regrets), "max_regret": max(regrets) if regrets else None}
    return out


def last_epoch_baseline(points):
    """The regret of selecting with no score: train to the end with a setting drawn at random.
    {pooled, per_method: {m: r}, mean, max}: the expected regret (best probe accuracy among
    ``points`` minus a final checkpoint's, averaged over the final checkpoints), pooled and
    within each method."""
    def expected(pts):
        best = max(p["probe_acc"] for p in pts)
        finals = [best - p["probe_acc"] for p in pts if p["final"]]
        return float(np.mean(finals)) if finals else None
    per = {m: expected([p for p in points if p["method"] == m])
           for m in sorted({p["method"] for p in points})}
    regrets = [r for r in per.values() if r is not None]
    return {"pooled": expected(points), "per_method": per, "mean": _mean(regrets),
            "max": max(regrets) if regrets else None}


def earlier_points(path, tap="stage4"):
    """The points of a ``selection.json`` written before (a grid measured in parts, on other
    machines), to analyse with new runs; its tap must be ``tap``."""
    try:
        result = read_json(path)
        points, its_tap = result["points"], result["tap"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a readable selection.json of sslzoo-select "
                        f"({type(e).__name__}: {e}); pass the file that run wrote") from None
    if its_tap != tap:
        raise DataError(f"{path} holds points at tap {its_tap!r}, not {tap!r}: pass --tap="
                        f"{its_tap} or measure the runs again")
    return points


def analyse(run_dirs, tap="stage4", scores=SCORES, earlier=()):
    """The selection study over ``run_dirs`` at ``tap``, with the ``earlier`` points of runs
    measured before (``earlier_points``): {"tap", "runs", "points", "levels",
    "probe_splits"}. A run may appear once."""
    unknown = [s for s in scores if s not in SCORES]
    if unknown:
        raise DataError(f"unknown scores {unknown}; choose from {', '.join(SCORES)}")
    points = list(earlier) + [p for d in run_dirs for p in run_points(d, tap)]
    runs = {}
    for p in points:
        runs.setdefault(p["run"], set()).add(p["epoch"])
    seen = sum(len(e) for e in runs.values())
    if seen != len(points):
        raise DataError("a run appears twice (in --runs and in --points, or under two "
                        "folders of the same name); give each run once")
    if not points:
        raise DataError("no points: give run directories or earlier selection.json files")
    levels = {"checkpoints": points, "final": [p for p in points if p["final"]]}
    return {"tap": tap, "runs": len(runs), "points": points,
            "probe_splits": sorted({p["probe_split"] for p in points}),
            "levels": {k: analyse_level(v, scores) for k, v in levels.items()},
            "baseline": {k: last_epoch_baseline(v) for k, v in levels.items()}}


def _f(v, digits=3):
    return "–" if v is None else f"{v:+.{digits}f}" if digits == 3 else f"{v:.{digits}f}"


def markdown(result):
    """One table per level: each score's τ, ρ and regret (in points), pooled and per method."""
    lines = [f"Label-free selection at `{result['tap']}`: {result['runs']} runs, "
             f"{len(result['points'])} checkpoints; probe scored on "
             f"{', '.join(result['probe_splits'])}."]
    if any(s.startswith("test") for s in result["probe_splits"]):
        lines.append("\n**Warning:** a probe was scored on `test`; tune on a validation split.")
    for level, table in result["levels"].items():
        n = sum(1 for p in result["points"] if level == "checkpoints" or p["final"])
        lines += [f"\n**{level}** ({n} points; regret in points of probe accuracy)\n",
                  "| score | τ pooled | ρ pooled | regret pooled | its pick | τ within method "
                  "(mean) | regret within method (mean / max) |",
                  "|---|---|---|---|---|---|---|"]
        for s, r in table.items():
            p = r["pooled"]
            reg = None if p["regret"] is None else 100 * p["regret"]
            mean_reg = None if r["mean_regret"] is None else 100 * r["mean_regret"]
            max_reg = None if r["max_regret"] is None else 100 * r["max_regret"]
            lines.append(f"| {s} | {_f(p['tau'])} | {_f(p['rho'])} | {_f(reg, 2)} | "
                         f"{p['pick'] or '–'} | {_f(r['mean_tau'])} | {_f(mean_reg, 2)} / "
                         f"{_f(max_reg, 2)} |")
        b = {k: None if v is None else 100 * v
             for k, v in result["baseline"][level].items() if k != "per_method"}
        lines.append(f"| no score: a random setting's last epoch (expected) | – | – | "
                     f"{_f(b['pooled'], 2)} | – | – | {_f(b['mean'], 2)} / {_f(b['max'], 2)} |")
    return "\n".join(lines)


def plot_scores(result, out_dir):
    """One scatter per score, ``selection_<score>.png``: score against probe accuracy over
    every checkpoint, one colour per method, the final checkpoints ringed. Returns the paths."""
    plt = pyplot()
    methods = sorted({p["method"] for p in result["points"]})
    paths = []
    for s in result["levels"]["checkpoints"]:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
        for i, m in enumerate(methods):
            pts = [p for p in result["points"] if p["method"] == m]
            ax.scatter([p["scores"][s] for p in pts], [p["probe_acc"] for p in pts], s=14,
                       color=f"C{i % 10}", label=m)
            fin = [p for p in pts if p["final"]]
            ax.scatter([p["scores"][s] for p in fin], [p["probe_acc"] for p in fin], s=60,
                       facecolors="none", edgecolors=f"C{i % 10}")
        ax.set_xlabel(f"{LOG_KEYS[s].format(result['tap'])}" + (" (lower is better)"
                                                                 if sense(s) < 0 else ""))
        ax.set_ylabel(f"{result['tap']} probe accuracy")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        path = os.path.join(out_dir, f"selection_{s}.png")
        save_png(fig, path)
        paths.append(path)
    return paths
