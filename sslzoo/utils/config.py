"""Settings dataclasses shared by the apps: fields that are flags, their checks, and
``--hparams`` text."""
import dataclasses
import numbers

from sslzoo.errors import ConfigError


def is_int(value, lower=None, upper=None):
    """Whether ``value`` is an integer (Python or NumPy, never a bool) within [lower, upper]."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and (lower is None or value >= lower) and (upper is None or value <= upper))


def parse_hparams(text):
    """``'temperature=0.2,proj_dim=64'`` as a dict of numbers (or strings; ``none`` is None)."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError(f"--hparams entry {item!r} is not key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key] = None if value.lower() == "none" else value
    return out


def setting(default, help_, **meta):
    """A dataclass field that is also a flag: its help text and bounds (``lower``,
    ``choices``) are read by the apps' flag generator and by ``check_fields``."""
    return dataclasses.field(default=default, metadata={"help": help_, **meta})


def check_fields(cfg):
    """Raise a ConfigError for any field of dataclass ``cfg`` below its ``lower`` bound or
    outside its ``choices`` (the bounds of ``setting``)."""
    for f in dataclasses.fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if "lower" in meta and value < meta["lower"]:
            raise ConfigError(f"--{f.name} must be >= {meta['lower']}, got {value}")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"--{f.name} must be one of {meta['choices']}, got {value!r}")
