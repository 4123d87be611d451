"""Figures: matplotlib's pyplot on the file-only Agg backend, and atomic PNG writes."""
from sslzoo.utils.io import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib  # lazy: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    return plt


def save_png(fig, path):
    """Write ``fig`` to ``path`` atomically (a killed run never leaves half a PNG) and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
