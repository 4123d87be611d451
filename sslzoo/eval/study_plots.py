"""``study.png`` (one run) and the seeds figure (several runs of one setting)."""
import numpy as np

from sslzoo.eval.study_stats import curves, stack_runs
from sslzoo.utils.figures import pyplot, save_png


def plot_study(records, path):
    """Two panels, written atomically: probe accuracy per layer vs epoch; held-out (solid) and
    pretraining (dashed) ΔR per layer vs epoch. Legends sit outside the axes."""
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), dpi=100)
    for i, (tap, c) in enumerate(curves(records).items()):
        color = f"C{i}"
        ax1.plot(c["epoch"], c["probe_acc"], "o-", ms=3, color=color, label=tap)
        ax2.plot(c["epoch"], c["heldout_delta_r"], "o-", ms=3, color=color,
                 label=f"{tap} held-out")
        ax2.plot(c["epoch"], c["train_delta_r"], "--", color=color, alpha=0.7,
                 label=f"{tap} pretraining")
    ax1.set(xlabel="epoch", ylabel="linear-probe accuracy (probe-eval split)",
            title="Probe accuracy per layer")
    ax2.set(xlabel="epoch", ylabel="ΔR (ε = 0.5, pair partition)", title="ΔR per layer")
    values = [v for r in records for v in (r["heldout_delta_r"], r["train_delta_r"])
              if v is not None]
    if values and min(values) > 0:
        ax2.set_yscale("log")  # layers differ by an order of magnitude
    for ax in (ax1, ax2):  # outside the axes, so no curve is hidden
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    save_png(fig, path)


def plot_seed_curves(runs, path, warning_epochs=()):
    """Three panels, written atomically, for several runs' ``curves``: probe accuracy per
    layer (mean, band ± SE over runs), held-out ΔR per layer (mean, log scale) and the
    memorisation gap per layer (mean); each run's warning epoch marked. Small (< 150 KB)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=80)
    for i, tap in enumerate(runs[0]):
        color = f"C{i}"
        for ax, key in zip(axes, ("probe_acc", "heldout_delta_r", "gap")):
            epochs, v = stack_runs(runs, tap, key)
            if not np.isfinite(v).any():
                continue
            mean = np.nanmean(v, axis=0)
            ax.plot(epochs, mean, color=color, label=tap)
            if len(runs) > 1:
                se = np.nanstd(v, axis=0, ddof=1) / np.sqrt(len(runs))
                ax.fill_between(epochs, mean - se, mean + se, color=color, alpha=0.2, lw=0)
    for ax in axes:
        for e in warning_epochs:
            ax.axvline(e, color="red", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
    axes[0].set(ylabel="linear-probe accuracy", title=f"Probe per layer (mean ± SE, "
                f"{len(runs)} seeds)")
    axes[1].set(ylabel="held-out ΔR", title="Held-out ΔR per layer", yscale="log")
    axes[2].set(ylabel="g = (ΔR_pre − ΔR_held) / ΔR_held", title="Memorisation gap")
    axes[2].axhline(0.0, color="grey", linewidth=0.6)
    axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    save_png(fig, path)
