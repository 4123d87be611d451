"""The benchmark's targets and its Markdown report."""

# key -> (label, the figure's value from the result, comparison, threshold)
TARGETS = {
    "sslzoo_overhead": ("sslzoo step ≤ 5% slower than plain Keras (CRR off)",
                        lambda r: r["sslzoo_overhead"], "<=", 1.05),
    "crr_overhead": ("CRR monitoring ≤ 3% (step time ratio on/off)",
                     lambda r: r["crr_overhead"], "<=", 1.03),
    "umm_overhead": ("UMM step ≤ 1.6× the sslzoo step (CRR off in both)",
                     lambda r: r["umm_overhead"], "<=", 1.6),
    "pipeline_vs_step": ("input pipeline ≥ 2× the step's images/s",
                         lambda r: r["pipeline_images_per_sec"] / r["images_per_sec"], ">=", 2.0),
}


def targets(result):
    """{key: {"label", "value", "target", "met"}} for every target in ``TARGETS``; a figure
    that was not measured (None: no plain reference) has value and met None."""
    out = {}
    for key, (label, value, op, threshold) in TARGETS.items():
        v = value(result)
        v = None if v is None else float(v)
        met = None if v is None else (v <= threshold if op == "<=" else v >= threshold)
        out[key] = {"label": label, "value": v, "target": f"{op} {threshold:g}",
                    "met": None if met is None else bool(met)}
    return out


def _fmt(v, digits=3):
    if v is None:
        return "n/a (not measured)"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 1e6 else f"{v:.3e}"
    return str(v)


def machine_line(m):
    """One sentence naming the machine of a ``machine.describe`` dict."""
    return (f"Machine: {m['cpu']}, {m['cpu_cores']} cores ({m['usable_cores']} usable), "
            f"device {m['device']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"precision {m['precision']}.")


def umm_line(settings):
    if settings is None:
        return ""
    return f"UMM early={settings['early']} early_lr_mult={settings['early_lr_mult']:g}, "


def kmeans_line(every):
    if not every:
        return ""
    return (f"a full memory bank with k-means every {every} steps (each epoch start; the figures "
            "average whole epochs), ")


def markdown(result):
    """A Markdown page: the figures, the targets (met / not met), the machine, the settings."""
    m, s = result["machine"], result["settings"]
    every = s.get("crr_every", 1)
    crr_on = "CRR on" if every == 1 else f"CRR every {every} steps"
    rows = [
        (f"images/s, sslzoo step ({crr_on})", result["images_per_sec"], 1),
        ("images/s, plain Keras step", result["plain_keras_images_per_sec"], 1),
        ("images/s, sslzoo step, CRR off", result["sslzoo_crr_off_images_per_sec"], 1),
        ("images/s, UMM step (CRR off)", result["umm_images_per_sec"], 1),
        ("sslzoo overhead (CRR off / plain)", result["sslzoo_overhead"], 3),
        (f"CRR overhead ({'on' if every == 1 else crr_on} / off)", result["crr_overhead"], 3),
        ("UMM overhead (UMM / sslzoo, CRR off)", result["umm_overhead"], 3),
        ("input pipeline images/s (digits, alone)", result["pipeline_images_per_sec"], 1),
        (f"MFU (peak {result['peak_flops_per_sec'] / 1e9:,.1f} GFLOP/s "
         f"{result['peak_flops_dtype']})", result["mfu"], 4),
        (f"peak memory, MB ({result['memory_kind']})", result["peak_memory_mb"], 1),
    ]
    lines = [f"# sslzoo benchmark: {s['method']} / {s['backbone']}", "", machine_line(m), "",
             f"Settings: batch {s['batch_size']} images ({s['views_per_step']} views) of "
             f"{s['image_size']} px, {s['steps']} timed steps after {s['warmup']} warmup, "
             f"{s['repeats']} alternating repeats (medians), optimizer {s['optimizer']}, "
             f"{kmeans_line(s.get('kmeans_every'))}"
             f"{umm_line(s['umm'])}FLOPs by {result['flops_source']}.", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {label} | {_fmt(v if v is None else float(v), d)} |" for label, v, d in rows]
    lines += [f"\nNot measured: {name}, because {why}." for name, why in
              result.get("not_measured", {}).items()]
    lines += ["", "| target | value | required | |", "|---|---|---|---|"]
    for t in result["targets"].values():
        if t["met"] is None:
            lines.append(f"| {t['label']} | n/a | {t['target']} | not measured |")
            continue
        lines.append(f"| {t['label']} | {t['value']:.3f} | {t['target']} | "
                     f"{'met' if t['met'] else 'not met'} |")
    return "\n".join(lines) + "\n"
