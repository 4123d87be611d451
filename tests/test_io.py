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
