import pytest
from absl import flags

from apps.flags import define_from_dataclass, values_for
from sslzoo.errors import ConfigError
from sslzoo.train.config import PretrainConfig, merge_for_resume


@pytest.fixture
def fv():
    values = flags.FlagValues()
    define_from_dataclass(PretrainConfig, values)
    return values


def test_defaults_are_the_quick_start_run(fv):
    fv(["prog"])
    values, present = values_for(PretrainConfig, fv)
    cfg = PretrainConfig(**values)
    assert (cfg.method, cfg.backbone, cfg.dataset) == ("simclr", "resnet_tiny", "digits")
    assert present == {}
    assert cfg.output_dir.startswith("runs/simclr_resnet_tiny_digits_")


@pytest.mark.parametrize("arg", ["--batch_size=0", "--epochs=-1", "--image_size=-32",
                                 "--augment_on=gpu", "--learning_rate=-0.1"])
def test_bad_flags_are_rejected_by_validators(fv, arg):
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", arg])


def test_config_validation_without_flags():
    with pytest.raises(ConfigError, match="batch_size"):
        PretrainConfig(batch_size=1)
    with pytest.raises(ConfigError, match="not key=value"):
        PretrainConfig(hparams="temperature").method_hparams()
    assert PretrainConfig(hparams="temperature=0.2, proj_dim=64").method_hparams() == {
        "temperature": 0.2, "proj_dim": 64}
    with pytest.raises(ConfigError, match="crop_scale='0.5'.*MIN:MAX"):
        PretrainConfig(augment="crop_scale=0.5")


def test_resume_merge_keeps_saved_and_rejects_clashes():
    saved = PretrainConfig(output_dir="r", epochs=5).to_dict()
    merged = merge_for_resume(saved, {"resume": True, "output_dir": "r", "verbose": 0})
    assert merged["epochs"] == 5 and merged["verbose"] == 0 and merged["resume"]
    with pytest.raises(ConfigError, match="--batch_size: saved 256, given 64"):
        merge_for_resume(saved, {"batch_size": 64})
