"""sslzoo.utils.io: atomic writes keep the old file on failure and publish normal modes."""
import os

import pytest

from sslzoo.utils.io import atomic_path, read_json, write_json


def test_write_json_gives_the_file_a_normal_mode(tmp_path):
    path = tmp_path / "a.json"
    write_json(str(path), {"x": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert read_json(str(path)) == {"x": 1}
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    write_json(str(path), {"x": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert read_json(str(path)) == {"x": 1} and os.listdir(tmp_path) == ["a.json"]


def test_file_lock_excludes_a_second_holder(tmp_path):
    import threading
    import time

    from sslzoo.utils.io import file_lock

    lock, events = str(tmp_path / "sub" / ".x.lock"), []

    def hold(tag):
        with file_lock(lock):
            events.append(f"{tag} in")
            time.sleep(0.3)
            events.append(f"{tag} out")

    threads = [threading.Thread(target=hold, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each holder leaves before the other enters (separate opens conflict under flock).
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
