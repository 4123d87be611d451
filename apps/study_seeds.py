"""One study setting at several seeds: per-layer peak / final / drop (mean ± SE), Spearman ρ of
the last stage's probe with each label-free signal, and the CRR warning against the probe.

    python -m apps.study_seeds --runs='runs/fmnist_s*' --output_dir=runs/fmnist_seeds
    python -m apps.study_seeds --runs='runs/search_*' --per_run     # one row per run

Writes seeds.json, seeds.md and seeds.png into --output_dir and prints the Markdown.
"""
import os

from absl import app, flags

from apps.flags import run_dirs

FLAGS = flags.FLAGS
flags.DEFINE_string("runs", "", "Comma-separated sslzoo-study run directories (globs allowed).")
flags.DEFINE_string("watch", "stage4", "The layer whose probe should drop (the last stage).")
flags.DEFINE_string("early", "stage1,stage2", "Layers that should hold their probe accuracy.")
flags.DEFINE_bool("replay_warning", False, "Recompute each run's CRR warning from its recorded "
                  "ΔR curves with today's rule, instead of the one its report holds.")
flags.DEFINE_enum("replay_rule", None, ["any", "strict"], "With --replay_warning: the rule "
                  "to replay (sslzoo.crr.warning.rule_settings); unset = the report's signals "
                  "after the warmup.")
flags.DEFINE_string("output_dir", "", "Where to write seeds.json, seeds.md and seeds.png.")
flags.DEFINE_bool("per_run", False, "Only print one table row per run (finished or not), as "
                  "for a search over settings; writes nothing.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.replay_rule and not FLAGS.replay_warning:
        raise app.UsageError("--replay_rule needs --replay_warning (it chooses the rule to "
                             "replay)")
    from sslzoo.eval.seeds import markdown, plot_seeds, run_rows, summarize_seeds
    from sslzoo.utils.io import write_json, write_text

    if FLAGS.per_run:
        print(run_rows(run_dirs(FLAGS.runs, "study run directories"),
                       replay=FLAGS.replay_warning, rule=FLAGS.replay_rule))
        return
    early = tuple(t.strip() for t in FLAGS.early.split(",") if t.strip())
    summary = summarize_seeds(run_dirs(FLAGS.runs, "study run directories"), watch=FLAGS.watch, early=early,
                              replay=FLAGS.replay_warning, rule=FLAGS.replay_rule)
    text = markdown(summary)
    print(text)
    if FLAGS.output_dir:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        write_json(os.path.join(FLAGS.output_dir, "seeds.json"), summary)
        write_text(os.path.join(FLAGS.output_dir, "seeds.md"), text + "\n")
        plot_seeds(summary, os.path.join(FLAGS.output_dir, "seeds.png"))


def run():
    """Console-script entry point (``sslzoo-study-seeds``)."""
    app.run(main)


if __name__ == "__main__":
    run()
