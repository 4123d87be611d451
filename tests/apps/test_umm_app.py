"""End-to-end UMM: --umm from scratch, post-hoc with --init_from, and flag errors (slow)."""
import json

import pytest

from sslzoo.errors import WeightsError
from sslzoo.train.pretrain import pretrain
from tests.apps.conftest import SMALL, run_app
from tests.apps.test_pretrain_app import _small_kwargs

pytestmark = pytest.mark.slow


def _report(run):
    return json.loads((run / "umm_report.json").read_text())


def test_umm_from_scratch_and_post_hoc_write_their_reports(tmp_path, tfds_dir):
    scratch = pretrain(**_small_kwargs(tmp_path, tfds_dir, umm=True, crr_reference_size=64))
    run = tmp_path / "run"
    report = _report(run)
    assert report["settings"]["early"] == "stage2" and report["settings"]["early_lr_mult"] == 1
    assert report["epochs"] == [1, 2] and len(report["curves"]["umm/delta_r"]) == 2
    assert all(v > 0 for v in report["curves"]["crr/stage4/heldout_delta_r"])
    assert scratch["umm"]["gamma"] == 0.01 and "linear_probe_top1_before" not in scratch

    post = pretrain(**_small_kwargs(tmp_path, tfds_dir, umm=True, epochs=1, init_from=str(run),
                                    crr_reference_size=64, output_dir=str(tmp_path / "post")))
    report = _report(tmp_path / "post")
    assert report["init_from"] == str(run) and report["settings"]["early_lr_mult"] == 0
    # The before-UMM probe is the scratch run's final backbone, scored the same way.
    assert post["linear_probe_top1_before"] == pytest.approx(scratch["linear_probe_top1"])
    assert 0 <= post["linear_probe_top1"] <= 1


def test_init_from_errors_leave_no_run_dir(tmp_path, tfds_dir):
    bad = tmp_path / "bad.weights.h5"
    bad.write_text("not hdf5")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        pretrain(**_small_kwargs(tmp_path, tfds_dir, init_from=str(bad)))
    with pytest.raises(WeightsError, match="not a zoo name, folder or weights file"):
        pretrain(**_small_kwargs(tmp_path, tfds_dir, init_from=str(tmp_path / "nope")))
    assert not (tmp_path / "run").exists()


def test_umm_flag_errors(tmp_path, tfds_dir):
    base = [*SMALL, f"--data_dir={tfds_dir}", f"--output_dir={tmp_path / 'r'}", "--umm"]
    out = run_app("pretrain", *base, "--umm_early=stage9")
    assert out.returncode != 0 and "valid: stage1, stage2, stage3, stage4" in out.stderr
    out = run_app("pretrain", *base, "--umm_beta=-1")
    assert out.returncode != 0 and "umm_beta" in out.stderr
