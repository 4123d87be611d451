"""The layer-wise CRR study: per-layer probe accuracy vs held-out ΔR while pretraining memorises.

    sslzoo-study                                    # SimCLR, 200 digits, 200 epochs, seed 0
    sslzoo-study --method=simclr --dataset=cifar10 --split='train[:1000]' \
        --probe_fit_split='train[1000:11000]' --probe_eval_split=test --output_dir=runs/s
    python -m apps.study --output_dir=runs/s --resume

Writes study.json and study.png into the run directory (besides everything sslzoo-pretrain
writes) and prints, per layer, the peak probe accuracy and its epoch, the final accuracy, the
drop, and the Spearman ρ between held-out ΔR and probe accuracy.
"""
from absl import app, flags

from apps.flags import define_from_dataclass, run_from_flags
from sslzoo.eval.study import StudyConfig

define_from_dataclass(StudyConfig)
FLAGS = flags.FLAGS


def _fmt(value, spec=".4f"):
    return "n/a" if value is None else format(value, spec)


def table(report):
    """The per-layer table and the pooled Spearman ρ, as text."""
    rho = report["summary"]["spearman"]
    lines = [f"{'layer':<8} {'peak acc @ epoch':>17} {'final acc':>10} {'drop':>8} "
             f"{'ρ(ΔR, acc)':>11}"]
    for tap, s in report["summary"]["per_tap"].items():
        peak = f"{_fmt(s['peak_acc'])} @ {_fmt(s['peak_epoch'], 'd')}"
        lines.append(f"{tap:<8} {peak:>17} {_fmt(s['final_acc']):>10} {_fmt(s['drop']):>8} "
                     f"{_fmt(rho['per_tap'][tap]['rho'], '+.3f'):>11}")
    a = rho["all"]
    lines.append(f"Spearman ρ(held-out ΔR, probe accuracy) over all {a['n']} (layer, epoch) "
                 f"points: {_fmt(a['rho'], '+.3f')} (p = {_fmt(a['p'], '.2g')})")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.eval.study import run_study

    report = run_from_flags(StudyConfig, run_study)
    if report is None:
        return 2
    summary = report["pretrain"]
    print(f"\nrun directory: {summary['output_dir']}  (study.json, study.png)")
    print(f"probes fitted on {report['settings']['probe_fit_split']}, scored on "
          f"{report['settings']['probe_eval_split']}, every {report['settings']['study_every']} "
          "epochs")
    print(table(report))
    print(f"images/s: {summary['images_per_sec']}, wall time: {summary['wall_time_sec']} s")
    return 0


def run():
    """Console-script entry point (``sslzoo-study``)."""
    app.run(main)


if __name__ == "__main__":
    run()
