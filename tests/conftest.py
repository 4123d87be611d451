import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The tiny pretraining run shared by the zoo and export tests: 256 digits, batch 64, one epoch,
# CRR off (it halves the run's time; tests/export fabricates a crr_report.json where needed).
TINY_RUN = dict(split="train[:256]", probe_train_split="train[:256]",
                probe_test_split="test[:200]", batch_size=64, epochs=1, verbose=0,
                hparams="proj_hidden_dim=128,proj_dim=64", crr_every=0)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """One TFDS data_dir for the whole session, so digits is built once."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tfds_dir):
    """A finished sslzoo-pretrain run directory (SimCLR, resnet_tiny, 32 px, projector → 64),
    made once per session. Tests must not modify it: copy what they corrupt."""
    from sslzoo.train.pretrain import pretrain

    out = str(tmp_path_factory.mktemp("tiny") / "run")
    pretrain(**TINY_RUN, data_dir=tfds_dir, output_dir=out)
    return out


def require_fashion_mnist():
    """Skip where Debian's dataset-fashion-mnist is not installed; under CI (CI=true), fail."""
    from sslzoo.data import fashion_mnist

    if os.path.isdir(fashion_mnist.SYSTEM_DIR):
        return
    message = f"{fashion_mnist.SYSTEM_DIR} is missing: `{fashion_mnist.INSTALL}` (as root)"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory):
    """A TFDS data_dir holding fashion_mnist, built once per session from Debian's files."""
    from sslzoo.data import load

    require_fashion_mnist()
    d = str(tmp_path_factory.mktemp("tfds_fashion"))
    load("fashion_mnist", "test", data_dir=d)
    return d
