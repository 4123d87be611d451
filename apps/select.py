"""Label-free model selection over a grid of runs: how well ΔR, RankMe and LiDAR rank the runs'
checkpoints against the labelled probe (Kendall τ, Spearman ρ, selection regret).

    python -m apps.select --runs='runs/grid_*' --tap=stage4 --output_dir=runs/selection

``--points=OLD/selection.json`` adds the points of runs measured before (a grid run in parts).

Each run is an sslzoo-study run (one checkpoint per probed epoch) or an sslzoo-pretrain run
(its final one). Writes selection.json, selection.md and selection_<score>.png into
--output_dir and prints the Markdown.
"""
import os

from absl import app, flags

from apps.flags import run_dirs

FLAGS = flags.FLAGS
flags.DEFINE_string("runs", "", "Comma-separated run directories (globs allowed).")
flags.DEFINE_string("tap", "stage4", "The layer whose probe is the oracle and whose scores "
                    "select.")
flags.DEFINE_list("scores", ["heldout_delta_r", "train_delta_r", "gap", "rankme", "lidar"],
                  "Label-free scores to compare.")
flags.DEFINE_list("points", [], "selection.json files of runs measured before (a grid run in "
                  "parts); their points join those of --runs.")
flags.DEFINE_string("output_dir", "", "Where to write selection.json, selection.md and the "
                    "plots; empty = only print.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import sys

    from sslzoo.errors import SSLZooError
    from sslzoo.eval.selection import analyse, earlier_points, markdown, plot_scores
    from sslzoo.utils.io import write_json, write_text

    runs = run_dirs(FLAGS.runs, "run directories of the grid") if FLAGS.runs or not \
        FLAGS.points else []
    try:
        earlier = [p for f in FLAGS.points for p in earlier_points(f, FLAGS.tap)]
        result = analyse(runs, tap=FLAGS.tap, scores=tuple(FLAGS.scores), earlier=earlier)
    except SSLZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = markdown(result)
    print(text)
    if FLAGS.output_dir:
        write_json(os.path.join(FLAGS.output_dir, "selection.json"), result)
        write_text(os.path.join(FLAGS.output_dir, "selection.md"), text + "\n")
        plot_scores(result, FLAGS.output_dir)
    return 0


def run():
    """Console-script entry point (``sslzoo-select``)."""
    app.run(main)


if __name__ == "__main__":
    run()
