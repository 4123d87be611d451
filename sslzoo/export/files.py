"""Atomic folder writes and the no-overwrite rule shared by every export output."""
import contextlib
import os
import shutil
import tempfile

from sslzoo.errors import ConfigError
from sslzoo.utils.io import publish_modes


def check_free(path, overwrite, what):
    """Refuse an existing ``path`` unless ``overwrite``."""
    if os.path.lexists(path) and not overwrite:
        raise ConfigError(f"{path} already exists ({what}); pass --overwrite (overwrite=True) "
                          "to replace it, or choose another --output_dir")


@contextlib.contextmanager
def atomic_dir(path, overwrite=False, what="output"):
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    An existing ``path`` is refused unless ``overwrite``; then it is moved aside, the new folder
    renamed into place and the old one deleted, so ``path`` is always either the old or the new
    complete folder. On failure the temporary folder is removed and ``path`` is untouched.
    """
    path = os.path.abspath(path)
    check_free(path, overwrite, what)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    old = None
    try:
        yield tmp
        publish_modes(tmp)
        if os.path.lexists(path):
            check_free(path, overwrite, what)  # it may have appeared meanwhile
            old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(path)}-", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old:  # put the previous folder back
                os.replace(old, path)
                old = None
            raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if old and os.path.lexists(old):
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.remove(old)
