"""PNG plot of per-layer ΔR over epochs (held-out solid, pretraining images dashed)."""
from sslzoo.utils.io import atomic_path


def plot_history(history, path, warning_epoch=None, title="ΔR per layer"):
    """Write the plot atomically to ``path``; ``warning_epoch`` (1-based) is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, (tap, h) in enumerate(history.items()):
        color = f"C{i}"
        epochs = range(1, len(h["heldout"]) + 1)
        ax.plot(epochs, h["heldout"], color=color, label=f"{tap} held-out")
        ax.plot(epochs, h["train"], color=color, linestyle="--", alpha=0.7,
                label=f"{tap} pretraining")
    if warning_epoch:
        ax.axvline(warning_epoch, color="red", linestyle=":", label=f"warning (epoch "
                   f"{warning_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ΔR (ε = 0.5, pair partition)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
