import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Small, fast settings shared by the end-to-end tests: 256 digits, batch 64, 4 steps/epoch.
SMALL = ["--split=train[:256]", "--probe_train_split=train[:256]", "--probe_test_split=test[:200]",
         "--batch_size=64", "--verbose=2", "--hparams=proj_hidden_dim=128,proj_dim=64"]


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """One TFDS data_dir for the whole session, so digits is built once."""
    return str(tmp_path_factory.mktemp("tfds"))


def app_cmd(app, *args):
    return [sys.executable, "-m", f"apps.{app}", *args]


def run_app(app, *args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(app_cmd(app, *args), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
