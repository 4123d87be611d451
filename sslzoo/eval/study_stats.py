"""Statistics of a study's records: per-layer curves, peaks and drops, and Spearman ρ between
probe accuracy and the label-free signals (pure NumPy/SciPy)."""
import math

import numpy as np

SIGNALS = ("heldout_delta_r", "train_delta_r", "gap")  # label-free, from the CRR callback


def number(value):
    """A finite float, or None (for JSON) when missing or not finite."""
    if value is None:
        return None
    value = float(np.asarray(value))
    return value if math.isfinite(value) else None


def curves(records):
    """{tap: {"epoch": [...], "probe_acc": [...], and one list per label-free signal}} in
    epoch order (None or absent → NaN)."""
    out = {}
    for r in sorted(records, key=lambda r: r["epoch"]):
        c = out.setdefault(r["tap"], {k: [] for k in ("epoch", "probe_acc", *SIGNALS)})
        for k in c:
            v = r.get(k)
            c[k].append(float("nan") if v is None else v)
    return out


def stack_runs(runs, tap, key):
    """(epochs, values (runs, epochs)) of several runs' ``curves`` on the epochs all measured."""
    common = sorted(set.intersection(*[set(r[tap]["epoch"]) for r in runs]))
    rows = [[dict(zip(r[tap]["epoch"], r[tap][key]))[e] for e in common] for r in runs]
    return common, np.asarray(rows, dtype=np.float64)


def _rho(x, y):
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    result = {"rho": None, "p": None, "n": int(ok.sum())}
    if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        res = spearmanr(x, y)
        result.update(rho=number(res.statistic), p=number(res.pvalue))
    return result


def spearman(records):
    """Spearman ρ between held-out ΔR and probe accuracy: ``"all"`` over every (layer, epoch)
    point, ``"per_tap"`` across epochs for each layer; ``"signals"``: per tap, ρ across epochs
    between probe accuracy and each label-free signal (held-out ΔR, pretraining ΔR, gap).
    Each is {"rho", "p", "n"}; ρ is None with fewer than 3 points or a constant series."""
    c = curves(records)
    every = [(d, a) for tap in c for d, a in zip(c[tap]["heldout_delta_r"], c[tap]["probe_acc"])]
    return {"all": _rho(*zip(*every)) if every else _rho([], []),
            "per_tap": {tap: _rho(v["heldout_delta_r"], v["probe_acc"]) for tap, v in c.items()},
            "signals": {tap: {k: _rho(v[k], v["probe_acc"]) for k in SIGNALS}
                        for tap, v in c.items()}}


def peaks(records):
    """Per tap: peak probe accuracy and its (first) epoch, final accuracy and epoch, and the
    drop from the peak (peak − final)."""
    out = {}
    for tap, c in curves(records).items():
        acc = np.asarray(c["probe_acc"], dtype=np.float64)
        if not np.isfinite(acc).any():
            out[tap] = {"peak_acc": None, "peak_epoch": None, "final_acc": None,
                        "final_epoch": None, "drop": None}
            continue
        i = int(np.nanargmax(acc))
        final = number(acc[-1])
        out[tap] = {"peak_acc": float(acc[i]), "peak_epoch": int(c["epoch"][i]),
                    "final_acc": final, "final_epoch": int(c["epoch"][-1]),
                    "drop": None if final is None else float(acc[i] - final)}
    return out


def summarize(records):
    return {"per_tap": peaks(records), "spearman": spearman(records)}
