"""``umm_report.json``: a UMM run's settings, per-epoch UMM terms and the watched layer's ΔR."""
import csv
import os

from sslzoo.utils.io import write_json

KEYS = ("loss", "umm/inner_loss", "umm/align", "umm/delta_r")


def write_umm_report(cfg, summary, watch=None):
    """Write the report beside metrics.csv; the curves come from metrics.csv (resumes too).
    ``watch`` is the layer whose held-out and pretraining ΔR curves it adds (the CRR
    callback's watched layer, by default the last backbone stage)."""
    with open(os.path.join(cfg.output_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    curves = {k: [float(r[k]) for r in rows if r.get(k)] for k in KEYS}
    for split in ("heldout", "train") if watch else ():
        key = f"crr/{watch}/{split}_delta_r"
        if rows and key in rows[0]:
            curves[key] = [float(r[key]) for r in rows if r.get(key)]
    report = {"settings": summary["umm"], "init_from": cfg.init_from or None,
              "epochs": [int(r["epoch"]) for r in rows], "curves": curves,
              "linear_probe_top1": summary.get("linear_probe_top1"),
              "linear_probe_top1_before": summary.get("linear_probe_top1_before")}
    write_json(os.path.join(cfg.output_dir, "umm_report.json"), report)
    return report
