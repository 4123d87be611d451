"""``crr_report.json`` and ``crr.png``: writing a run's CRR curves and warning, and reading them
back (a resumed run continues its curves; the study and the seed summaries replay them)."""
import math
import os

from sslzoo.crr.plot import plot_history
from sslzoo.utils.io import read_json, write_json

REPORT_FILE, PLOT_FILE = "crr_report.json", "crr.png"


def json_history(history):
    """The curves with non-finite ΔR as None (JSON has no NaN)."""
    return {t: {s: [v if math.isfinite(v) else None for v in c] for s, c in h.items()}
            for t, h in history.items()}


def write_report(output_dir, report, history, warning=None, plot=True):
    """Rewrite ``crr_report.json`` (atomically: a killed run keeps the curves up to its last
    finished epoch) and, with ``plot``, ``crr.png`` marking the warning's turning epoch."""
    write_json(os.path.join(output_dir, REPORT_FILE), report)
    if plot:
        write_plot(output_dir, history, warning)


def write_plot(output_dir, history, warning=None):
    plot_history(history, os.path.join(output_dir, PLOT_FILE),
                 warning["turning_epoch"] if warning else None)


def load_warning(path, epochs):
    """A report's warning if it fired within the first ``epochs`` epochs, else None."""
    warning = read_json(path).get("warning")
    return warning if warning and warning["detected_at_epoch"] <= epochs else None


def load_history(path, epochs):
    """The curves of the first ``epochs`` epochs from a report, NaN-padded if it has fewer."""
    out = {}
    for tap, h in read_json(path)["history"].items():
        out[tap] = {}
        for split, curve in h.items():
            curve = [float("nan") if v is None else float(v) for v in curve[:epochs]]
            out[tap][split] = curve + [float("nan")] * (epochs - len(curve))
    return out
