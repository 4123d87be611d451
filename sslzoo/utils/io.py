"""Atomic file writes (write to a temporary file in the same folder, fsync, then rename) and an
inter-process lock."""
import contextlib
import json
import os
import tempfile

try:
    import fcntl
except ImportError:  # not POSIX: no inter-process lock
    fcntl = None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_modes(path):
    """Give ``path`` (a file, or a folder and everything in it) the permissions a normal write
    would have: temporary files and folders are private (0600 / 0700) until renamed."""
    mask = _umask()
    if os.path.isfile(path):
        os.chmod(path, 0o666 & ~mask)
        return
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        publish_modes(tmp)  # mkstemp made it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive advisory lock on ``path`` (created if missing) across processes, so
    that two runs started together do not build the same files at once (a no-op where
    ``fcntl`` is missing). The lock is released when the block ends or the process dies."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_weights(model, path):
    """``model.save_weights`` without ever leaving a half-written file at ``path``."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
