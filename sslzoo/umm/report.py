"""``umm_report.json``: a UMM run's settings, per-epoch UMM terms and last-layer ΔR."""
import csv
import os

from sslzoo.utils.io import write_json

KEYS = ("loss", "umm/inner_loss", "umm/align", "umm/delta_r")


def write_umm_report(cfg, summary):
    """Write the report beside metrics.csv; the curves come from metrics.csv (resumes too)."""
    with open(os.path.join(cfg.output_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    last = "stage4"
    curves = {k: [float(r[k]) for r in rows if r.get(k)] for k in KEYS}
    for split in ("heldout", "train"):
        key = f"crr/{last}/{split}_delta_r"
        if rows and key in rows[0]:
            curves[key] = [float(r[key]) for r in rows if r.get(key)]
    report = {"settings": summary["umm"], "init_from": cfg.init_from or None,
              "epochs": [int(r["epoch"]) for r in rows], "curves": curves,
              "linear_probe_top1": summary.get("linear_probe_top1"),
              "linear_probe_top1_before": summary.get("linear_probe_top1_before")}
    write_json(os.path.join(cfg.output_dir, "umm_report.json"), report)
    return report
