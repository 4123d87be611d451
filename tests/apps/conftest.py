import os
import subprocess
import sys

from tests.conftest import tfds_dir  # noqa: F401 (the fixture; some modules import it here)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Small, fast settings shared by the end-to-end tests: 256 digits, batch 64, 4 steps/epoch.
SMALL = ["--split=train[:256]", "--probe_train_split=train[:256]", "--probe_test_split=test[:200]",
         "--batch_size=64", "--verbose=2", "--hparams=proj_hidden_dim=128,proj_dim=64"]


def app_cmd(app, *args):
    return [sys.executable, "-m", f"apps.{app}", *args]


def run_app(app, *args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(app_cmd(app, *args), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
