"""One study setting at several seeds: the issue-16 claims, measured across run directories.

``summarize_seeds(run_dirs, watch="stage4")`` reads each run's ``study.json`` and
``crr_report.json`` and returns:

- ``layers``: per tap, ``mean_curve`` (the seed-mean probe curve's peak, final and drop, with
  the drop's SE over seeds), and each run's own peak, final and drop (peak − final) as mean,
  standard error over seeds (SE = sample std / √n) and values; the peak epochs;
- ``memorises``: whether the watched tap's seed-mean drop is ≥ ``min_drop`` and ≥ 3 SE, while
  every tap in ``early`` ends within ``early_tol`` of its seed-mean peak;
- ``signals``: per label-free signal, the Spearman ρ across epochs between the watched tap's
  probe accuracy and that signal, per run and mean;
- ``warning``: per run, the CRR warning's epochs against the probe's peak epoch (the lag, and
  whether it is within ``lag_frac`` of the run's epochs after the peak), and the probe accuracy
  at the measured epoch nearest the best-by-CRR epoch against the best probe accuracy (a
  label-chosen checkpoint). With ``replay``, the warning is recomputed from the recorded ΔR
  curves by today's rule (``replay_warning``) instead of read from the report.
"""
import math
import os

import numpy as np

from sslzoo.crr.report import load_history
from sslzoo.crr.warning import SIGNALS as WARNING_SIGNALS
from sslzoo.crr.warning import detect, gaps, rule_settings
from sslzoo.errors import DataError
from sslzoo.eval.study_plots import plot_seed_curves
from sslzoo.eval.study_stats import SIGNALS, curves, stack_runs
from sslzoo.utils.io import read_json


def mean_se(values):
    """{"mean", "se", "values"}; SE is the sample standard deviation over √n (None if n < 2)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "se": None, "values": []}
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(np.mean(v)), "se": se, "values": v}


def load_run(run_dir):
    """{"dir", "study", "crr", "epochs"} of one finished study run."""
    paths = {k: os.path.join(run_dir, f) for k, f in
             (("study", "study.json"), ("crr", "crr_report.json"), ("config", "config.json"))}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise DataError(f"{run_dir} is not a finished sslzoo-study run: no "
                        f"{', '.join(os.path.basename(p) for p in missing)}")
    out = {k: read_json(p) for k, p in paths.items()}
    return {"dir": run_dir, "study": out["study"], "crr": out["crr"], "config": out["config"],
            "epochs": int(out["config"]["epochs"])}


def replay_warning(run, rule=None):
    """The warning that ``sslzoo.crr.warning.detect`` gives today when it is run after every
    epoch of the run's recorded curves, as the callback runs it (1-based epochs), or None. The
    report's watch, early taps and thresholds are kept. ``rule`` (``any`` or ``strict``, see
    ``rule_settings``) sets the signals and the ignored first epochs; None keeps the report's
    signals (both, in reports that predate them) and ignores the warmup epochs."""
    settings = run["crr"]["settings"]
    n = max(len(c) for h in run["crr"]["history"].values() for c in h.values())
    history = load_history(os.path.join(run["dir"], "crr_report.json"), n)
    warmup = float(run["config"].get("warmup_epochs", 0))
    if rule is None:
        chosen = {"signals": tuple(settings.get("signals", WARNING_SIGNALS)),
                  "ignore_before": math.ceil(warmup)}
    else:
        chosen = rule_settings(rule, run["epochs"], warmup)
    for t in range(1, n + 1):
        found = detect({tap: {s: c[:t] for s, c in h.items()} for tap, h in history.items()},
                       settings["watch"], settings["early"], settings["patience"],
                       settings["drop_tol"], settings["gap_threshold"], **chosen)
        if found:
            return {**found, "turning_epoch": found["turning_epoch"] + 1,
                    "best_epoch": found["best_epoch"] + 1, "detected_at_epoch": t,
                    "replayed": True, "rule": rule}
    return None


def _nearest(curve, epoch):
    """Probe accuracy at the measured epoch nearest ``epoch`` (1-based); (epoch, acc)."""
    i = int(np.argmin([abs(e - epoch) for e in curve["epoch"]]))
    return int(curve["epoch"][i]), float(curve["probe_acc"][i])


def warning_check(run, watch, lag_frac=0.1):
    """The warning's timing and its best-by-CRR choice for one run, against the probe."""
    c = curves(run["study"]["records"])[watch]
    acc = np.asarray(c["probe_acc"], dtype=np.float64)
    peak = int(np.nanargmax(acc))
    out = {"peak_epoch": int(c["epoch"][peak]), "peak_acc": float(acc[peak]),
           "epochs": run["epochs"], "warning": run["crr"].get("warning")}
    w = out["warning"]
    if not w:
        return {**out, "fired": False}
    lag = w["detected_at_epoch"] - out["peak_epoch"]
    best_epoch, best_acc = _nearest(c, w["best_epoch"])
    return {**out, "fired": True, "lag": lag,
            "within_lag": 0 <= lag <= lag_frac * run["epochs"],
            "best_by_crr_epoch": w["best_epoch"], "probe_epoch_used": best_epoch,
            "best_by_crr_acc": best_acc, "loss_vs_label_best": float(acc[peak] - best_acc)}


def mean_curve(runs, tap):
    """The seed-mean probe curve of ``tap`` on the epochs every run measured: its peak, final
    and drop, and the drop's SE over seeds (each run's accuracy at the mean curve's peak epoch
    minus its final accuracy). Peaks of single noisy runs overstate a drop; the mean's less."""
    epochs, acc = stack_runs([curves(r["study"]["records"]) for r in runs], tap, "probe_acc")
    mean = np.nanmean(acc, axis=0)
    i = int(np.nanargmax(mean))
    drops = acc[:, i] - acc[:, -1]
    return {"epochs": epochs, "mean": [float(v) for v in mean], "peak_epoch": int(epochs[i]),
            "peak_acc": float(mean[i]), "final_acc": float(mean[-1]),
            "drop": float(mean[i] - mean[-1]), "drop_se": mean_se(drops)["se"]}


def summarize_seeds(run_dirs, watch="stage4", early=("stage1", "stage2"), min_drop=0.02,
                    early_tol=0.005, lag_frac=0.1, replay=False, rule=None):
    """The claims across runs of one setting (see the module docstring)."""
    runs = [load_run(d) for d in run_dirs]
    for r in runs if replay else ():
        r["crr"] = {**r["crr"], "warning": replay_warning(r, rule)}
    per_tap = [r["study"]["summary"]["per_tap"] for r in runs]
    taps = list(per_tap[0])
    layers = {t: {k: mean_se([p[t][k] for p in per_tap if t in p])
                  for k in ("peak_acc", "final_acc", "drop")} for t in taps}
    for t in taps:
        layers[t]["peak_epochs"] = [p[t]["peak_epoch"] for p in per_tap if t in p]
        layers[t]["mean_curve"] = mean_curve(runs, t)
    drop = layers[watch]["mean_curve"]
    memorises = bool(
        drop["drop"] >= min_drop and (drop["drop_se"] is None or drop["drop"] >= 3 *
                                      drop["drop_se"])
        and all(layers[e]["mean_curve"]["drop"] <= early_tol for e in early if e in layers))
    signals = {}
    for k in SIGNALS:
        rhos = [r["study"]["summary"]["spearman"].get("signals", {}).get(watch, {})
                .get(k, {}).get("rho") for r in runs]
        signals[k] = mean_se(rhos)
    warnings = [warning_check(r, watch, lag_frac) for r in runs]
    return {"runs": [r["dir"] for r in runs], "watch": watch, "early": list(early),
            "criteria": {"min_drop": min_drop, "early_tol": early_tol, "lag_frac": lag_frac},
            "warning_replayed": bool(replay),
            "layers": layers, "memorises": memorises, "signals": signals,
            "warning": warnings}


def markdown(summary):
    """The summary as Markdown tables (per layer; signals; warning per run)."""
    f = lambda m: "n/a" if m["mean"] is None else (
        f"{m['mean']:.4f}" + (f" ± {m['se']:.4f}" if m["se"] is not None else ""))
    lines = ["| layer | seed-mean curve: peak @ epoch → final | its drop ± SE | per run: peak "
             "| final | drop | peak epochs |", "|---|---|---|---|---|---|---|"]
    for tap, s in summary["layers"].items():
        m = s["mean_curve"]
        se = f" ± {m['drop_se']:.4f}" if m["drop_se"] is not None else ""
        lines.append(f"| {tap} | {m['peak_acc']:.4f} @ {m['peak_epoch']} → {m['final_acc']:.4f} "
                     f"| {m['drop']:.4f}{se} | {f(s['peak_acc'])} | {f(s['final_acc'])} | "
                     f"{f(s['drop'])} | {', '.join(str(e) for e in s['peak_epochs'])} |")
    lines += ["", f"Memorises ({summary['watch']} drop ≥ {summary['criteria']['min_drop']} and "
              f"≥ 3 SE, {', '.join(summary['early'])} within "
              f"{summary['criteria']['early_tol']} of their peaks): "
              f"**{'yes' if summary['memorises'] else 'no'}**", "",
              f"| signal (Spearman ρ with {summary['watch']} probe accuracy) | mean ± SE | "
              "per run |", "|---|---|---|"]
    for k, m in summary["signals"].items():
        lines.append(f"| {k} | {f(m)} | {', '.join(f'{v:+.2f}' for v in m['values'])} |")
    lines += ["", "| run | probe peak @ epoch | warning at | lag | within | best-by-CRR epoch "
              "| its acc | loss vs label best |", "|---|---|---|---|---|---|---|---|"]
    for run, w in zip(summary["runs"], summary["warning"]):
        name = os.path.basename(os.path.normpath(run))
        if not w["fired"]:
            lines.append(f"| {name} | {w['peak_acc']:.4f} @ {w['peak_epoch']} | never | | | | "
                         "| |")
            continue
        lines.append(
            f"| {name} | {w['peak_acc']:.4f} @ {w['peak_epoch']} | "
            f"{w['warning']['detected_at_epoch']} ({w['warning']['signal']}) | {w['lag']:+d} | "
            f"{'yes' if w['within_lag'] else 'no'} | {w['best_by_crr_epoch']} | "
            f"{w['best_by_crr_acc']:.4f} | {w['loss_vs_label_best']:+.4f} |")
    return "\n".join(lines)


def run_rows(run_dirs, taps=("stage1", "stage2", "stage4", "proj"), replay=False, rule=None):
    """A Markdown table with one row per run (finished or not): each tap's probe peak @ epoch
    → final, the gap of stage1 and stage4 at the first and last epoch, and the warning (with
    ``replay``, recomputed by ``replay_warning(run, rule)``)."""
    head = " | ".join(f"{t} peak @ ep → final" for t in taps)
    lines = [f"| run | epochs | {head} | gap stage1 / stage4, first → last | warning |",
             "|---|---|" + "---|" * len(taps) + "---|---|"]
    for d in run_dirs:
        study, crr = (read_json(os.path.join(d, f)) for f in ("study.json", "crr_report.json"))
        c = curves(study["records"])
        cells = []
        for t in taps:
            acc = np.asarray(c[t]["probe_acc"], dtype=np.float64)
            i = int(np.nanargmax(acc))
            cells.append(f"{acc[i]:.4f} @ {c[t]['epoch'][i]} → {acc[-1]:.4f}")
        hist = {t: {k: [np.nan if v is None else v for v in crr["history"][t][k]]
                    for k in ("heldout", "train")} for t in ("stage1", "stage4")}
        g = {t: gaps(hist[t]) for t in hist}
        w = replay_warning(load_run(d), rule) if replay else crr.get("warning")
        warn = f"epoch {w['detected_at_epoch']} ({w['signal']}, best {w['best_epoch']})" \
            if w else "none"
        lines.append(f"| {os.path.basename(os.path.normpath(d))} | {c[taps[0]]['epoch'][-1]} | "
                     f"{' | '.join(cells)} | {g['stage1'][0]:.3f} → {g['stage1'][-1]:.3f} / "
                     f"{g['stage4'][0]:.3f} → {g['stage4'][-1]:.3f} | {warn} |")
    return "\n".join(lines)


def plot_seeds(summary, path):
    """Probe accuracy (mean ± SE over seeds) and ΔR per layer against epoch; warnings marked."""
    runs = [load_run(d) for d in summary["runs"]]
    marks = [w["warning"]["detected_at_epoch"] for w in summary["warning"] if w["fired"]]
    plot_seed_curves([curves(r["study"]["records"]) for r in runs], path, marks)
