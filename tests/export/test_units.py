"""The parts of sslzoo.export that need no model: names, the rebuilt command, the CRR summary,
--metrics_json and the atomic folder writes."""
import json
import os

import pytest

from sslzoo.errors import ConfigError
from sslzoo.export.config import ExportConfig
from sslzoo.export.entry import crr_summary, default_name, pretrain_command, read_metrics_json
from sslzoo.export.files import atomic_dir
from sslzoo.train.config import PretrainConfig


def test_default_name_is_sanitised():
    assert default_name({"method": "byol", "backbone": "resnet18", "dataset": "cifar10"}) == \
        "byol_resnet18_cifar10"
    assert default_name({"method": "simclr", "backbone": "resnet_tiny",
                         "dataset": "folder:/data/my pics/"}) == "simclr_resnet_tiny_folder_my_pics"
    assert default_name({"method": "dino", "backbone": "resnet50",
                         "dataset": "imagenet2012_subset/1pct"}) == \
        "dino_resnet50_imagenet2012_subset_1pct"


def test_command_lists_the_non_default_settings_only():
    config = PretrainConfig(method="byol", epochs=5, umm=True, crr_early_stop=False,
                            split="train[:10%]", hparams="proj_dim=64,temperature=0.2",
                            output_dir="/tmp/x", data_dir="/data", verbose=2).to_dict()
    assert pretrain_command(config) == ("sslzoo-pretrain --method=byol '--split=train[:10%]' "
                                        "--epochs=5 --hparams=proj_dim=64,temperature=0.2 --umm")
    flipped = pretrain_command({**config, "crr_early_stop": True, "download": False})
    assert flipped.endswith("--crr_early_stop --umm")  # dataclass order; --download is noise
    assert pretrain_command({**config, "umm": False}).endswith("temperature=0.2")
    assert pretrain_command({"study_every": 10, "epochs": 200}) == "sslzoo-study"
    assert pretrain_command({"study_every": 5, "epochs": 20}).startswith(
        "sslzoo-study --epochs=20")


def test_crr_summary_from_the_report_or_the_summary(tmp_path):
    report = {"warning": {"turning_epoch": 3}, "restored_best_weights": False,
              "settings": {"watch": "stage4", "patience": 5},
              "history": {"stage4": {"heldout": [1.0, 2.0, None], "train": [1.5, 2.5, 3.5]},
                          "proj": {"heldout": [4.0, 5.0, 6.0], "train": [4.0, 5.0, 6.0]}}}
    (tmp_path / "crr_report.json").write_text(json.dumps(report))
    out = crr_summary(str(tmp_path), {"crr_warning": "ignored: the report wins"})
    assert out["warning"] == {"turning_epoch": 3} and out["epochs"] == 3
    assert out["last_delta_r"] == {"stage4": {"heldout": 2.0, "train": 3.5},
                                   "proj": {"heldout": 6.0, "train": 6.0}}
    os.remove(tmp_path / "crr_report.json")
    assert crr_summary(str(tmp_path), {"crr_warning": None}) == {"warning": None,
                                                                 "source": "summary.json"}
    assert crr_summary(str(tmp_path), {}) is None


def test_metrics_json_and_config_errors(tmp_path):
    good = tmp_path / "m.json"
    good.write_text('{"linear_top1": 0.9, "knn_top1": 0.8}')
    assert read_metrics_json(str(good)) == {"linear_top1": 0.9, "knn_top1": 0.8}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        read_metrics_json(str(bad))
    with pytest.raises(ConfigError, match="unreadable"):
        read_metrics_json(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="--output_dir is required"):
        ExportConfig(source="x")
    with pytest.raises(ConfigError, match="--measure and --metrics_json"):
        ExportConfig(source="x", output_dir="o", measure=True, metrics_json=str(good))
    with pytest.raises(ConfigError, match="--noentry"):
        ExportConfig(source="x", output_dir="o", measure=True, entry=False)


def test_atomic_dir_replaces_only_with_overwrite_and_cleans_up(tmp_path):
    target = tmp_path / "entry"
    with atomic_dir(str(target)) as tmp:
        (tmp_path / os.path.basename(tmp) / "a").write_text("1")
    assert (target / "a").read_text() == "1" and oct(os.stat(target).st_mode)[-3:] != "700"
    with pytest.raises(ConfigError, match=f"{target} already exists.*--overwrite"):
        with atomic_dir(str(target)):
            pass
    with pytest.raises(RuntimeError):  # a failed write leaves the old folder as it was
        with atomic_dir(str(target), overwrite=True) as tmp:
            (tmp_path / os.path.basename(tmp) / "b").write_text("2")
            raise RuntimeError("boom")
    assert os.listdir(target) == ["a"]
    with atomic_dir(str(target), overwrite=True) as tmp:
        (tmp_path / os.path.basename(tmp) / "b").write_text("2")
    assert os.listdir(target) == ["b"] and os.listdir(tmp_path) == ["entry"]
