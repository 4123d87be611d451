"""PNG plot of per-layer ΔR over epochs (held-out solid, pretraining images dashed) and of the
memorisation gap g = (ΔR_pretrain − ΔR_heldout) / |ΔR_heldout| per layer."""
from sslzoo.crr.warning import gaps
from sslzoo.utils.figures import pyplot, save_png


def plot_history(history, path, warning_epoch=None, title="ΔR per layer"):
    """Write the plot atomically to ``path``; ``warning_epoch`` (1-based) is marked. The
    legend sits outside the axes, so it never covers a curve."""
    plt = pyplot()

    fig, (ax, gx) = plt.subplots(2, 1, figsize=(8.5, 6), dpi=100, sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    for i, (tap, h) in enumerate(history.items()):
        color = f"C{i}"
        epochs = range(1, len(h["heldout"]) + 1)
        ax.plot(epochs, h["heldout"], color=color, label=f"{tap} held-out")
        ax.plot(epochs, h["train"], color=color, linestyle="--", alpha=0.7,
                label=f"{tap} pretraining")
        gx.plot(epochs, gaps(h), color=color, label=f"{tap} gap")
    for a in (ax, gx):
        if warning_epoch:
            a.axvline(warning_epoch, color="red", linestyle=":",
                      label=f"warning (epoch {warning_epoch})" if a is ax else None)
    gx.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_ylabel("ΔR (ε = 0.5, pair partition)")
    ax.set_title(title)
    gx.set_xlabel("epoch")
    gx.set_ylabel("memorisation gap g")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    gx.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    save_png(fig, path)
