"""Label-free overfitting warning from per-layer ΔR curves (pure Python, unit-testable).

``history[tap] = {"heldout": [ΔR per epoch], "train": [ΔR per epoch]}`` holds each tap's ΔR
on a fixed held-out reference set and on a fixed set of pretraining images (both with fixed
views). Two signals, checked at the watched (last) layer:

1. **Held-out drop.** Its held-out ΔR has stayed below (1 − drop_tol)·peak for ``patience``
   epochs after its peak, while every early tap's held-out ΔR is still within drop_tol of its
   own peak. Best epoch: the peak.
2. **Memorisation gap.** g(t) = (ΔR_train − ΔR_heldout) / |ΔR_heldout|. Its growth over its
   running minimum, g(t) − min_{s≤t} g(s), has exceeded ``gap_threshold`` for ``patience``
   consecutive epochs, while the early taps' growth stays below gap_threshold / 2. Best
   epoch: the last epoch before that streak began.

Both need ``patience`` epochs of evidence and the early layers holding, which is what tells
memorisation (late layers only) from collapse or divergence (every layer at once). The first
``ignore_before`` epochs (the learning-rate warmup) are no evidence: a network still warming up
changes fast at every layer, and a peak or a minimum there is a transient.

Two rules choose among them (``rule_settings``): ``any`` (the default) fires on either
signal after the warmup; ``strict`` fires on the memorisation gap only, and ignores the first
max(warmup, ⌈epochs/10⌉) epochs.

Signal 2 matters because the held-out ΔR of a memorising layer can keep rising (the features
spread out everywhere) while ΔR on the images it trains on rises faster.
"""
import math

SIGNALS = ("heldout_drop", "memorisation_gap")
RULES = ("any", "strict")


def rule_settings(rule, epochs, warmup_epochs):
    """``{"signals", "ignore_before"}`` of a warning rule for a run of ``epochs`` epochs."""
    if rule not in RULES:
        raise ValueError(f"unknown CRR warning rule {rule!r}; choose one of {', '.join(RULES)}")
    warmup = math.ceil(warmup_epochs)
    if rule == "strict":
        return {"signals": ("memorisation_gap",),
                "ignore_before": max(warmup, math.ceil(epochs / 10))}
    return {"signals": SIGNALS, "ignore_before": warmup}


def gaps(h):
    """Relative memorisation gap per epoch of one tap's history."""
    return [(t - v) / max(abs(v), 1e-8) for t, v in zip(h["train"], h["heldout"])]


def _excess(values):
    out, low = [], float("inf")
    for v in values:
        low = min(low, v)
        out.append(v - low)
    return out


def heldout_drop(history, watch, early, patience=5, drop_tol=0.02):
    """Signal 1: (turning epoch index, best epoch index) or None."""
    curve = history[watch]["heldout"]
    t = len(curve) - 1
    peak = max(range(len(curve)), key=curve.__getitem__)
    if t - peak < patience or any(v >= curve[peak] * (1 - drop_tol) for v in curve[peak + 1:]):
        return None
    for e in early:
        c = history[e]["heldout"]
        if c[-1] < max(c) * (1 - drop_tol):
            return None
    return peak + 1, peak


def gap_growth(history, watch, early, patience=5, gap_threshold=0.05):
    """Signal 2: (turning epoch index, best epoch index) or None."""
    excess = _excess(gaps(history[watch]))
    if len(excess) < patience or not all(x > gap_threshold for x in excess[-patience:]):
        return None
    if any(_excess(gaps(history[e]))[-1] > gap_threshold / 2 for e in early):
        return None
    start = len(excess) - patience
    while start > 0 and excess[start - 1] > gap_threshold:
        start -= 1
    return start, max(start - 1, 0)


def _finite_epochs(history, taps):
    """Indices of the epochs where every curve of ``taps`` is finite (not NaN or Inf)."""
    n = len(history[taps[0]]["heldout"])
    return [i for i in range(n) if all(math.isfinite(history[t][s][i])
                                       for t in taps for s in ("heldout", "train"))]


def detect(history, watch, early, patience=5, drop_tol=0.02, gap_threshold=0.05,
           ignore_before=0, signals=SIGNALS):
    """The earliest firing of ``signals`` as a dict (epoch indices are 0-based), or None.

    Epochs before ``ignore_before`` and epochs with a non-finite ΔR at the watched or early taps
    (a NaN batch, or the gap left by a resumed run without a report) are skipped; the indices
    refer to the full history.
    """
    keep = [i for i in _finite_epochs(history, [watch, *early]) if i >= ignore_before]
    if not keep:
        return None
    full = history
    history = {t: {s: [full[t][s][i] for i in keep] for s in ("heldout", "train")}
               for t in [watch, *early]}
    unknown = set(signals) - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown CRR warning signals {sorted(unknown)}; known: {SIGNALS}")
    found = []
    hit = heldout_drop(history, watch, early, patience, drop_tol) \
        if "heldout_drop" in signals else None
    if hit:
        found.append({"signal": "heldout_drop", "turning_epoch": hit[0], "best_epoch": hit[1]})
    hit = gap_growth(history, watch, early, patience, gap_threshold) \
        if "memorisation_gap" in signals else None
    if hit:
        found.append({"signal": "memorisation_gap", "turning_epoch": hit[0],
                      "best_epoch": hit[1]})
    if not found:
        return None
    first = min(found, key=lambda f: f["turning_epoch"])
    return {**first, "turning_epoch": keep[first["turning_epoch"]],
            "best_epoch": keep[first["best_epoch"]]}
