"""absl flags generated from a settings dataclass, so names, defaults and help live in one place."""
import dataclasses
import glob
import os

from absl import app, flags


def define_from_dataclass(cls, flag_values=flags.FLAGS):
    """Define one absl flag per field of ``cls``; bounds become flag validators."""
    for f in dataclasses.fields(cls):
        meta, default = f.metadata, f.default
        kwargs = {"flag_values": flag_values}
        if f.type in (bool, "bool"):
            flags.DEFINE_bool(f.name, default, meta["help"], **kwargs)
        elif f.type in (int, "int"):
            flags.DEFINE_integer(f.name, default, meta["help"], lower_bound=meta.get("lower"),
                                 **kwargs)
        elif f.type in (float, "float"):
            flags.DEFINE_float(f.name, default, meta["help"], lower_bound=meta.get("lower"),
                               **kwargs)
        elif "choices" in meta:
            flags.DEFINE_enum(f.name, default, list(meta["choices"]), meta["help"], **kwargs)
        else:
            flags.DEFINE_string(f.name, default, meta["help"], **kwargs)


def values_for(cls, flag_values=flags.FLAGS):
    """(all field values, the ones given explicitly on the command line)."""
    names = [f.name for f in dataclasses.fields(cls)]
    values = {n: flag_values[n].value for n in names}
    present = {n: values[n] for n in names if flag_values[n].present}
    return values, present


def run_from_flags(cls, job, flag_values=flags.FLAGS):
    """Build ``cls`` from the flags (a ``--resume``, where ``cls`` has one, reuses the saved
    config.json, with only the flags given explicitly on top) and return ``job(config)``; an
    sslzoo error is printed and returned as None, so the app exits with status 2."""
    import os
    import sys

    from absl import logging

    from sslzoo.errors import SSLZooError
    from sslzoo.train.config import merge_for_resume
    from sslzoo.utils.io import read_json
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    values, present = values_for(cls, flag_values)
    saved = os.path.join(values["output_dir"], "config.json")
    if values.get("resume") and values["output_dir"] and os.path.exists(saved):
        values = merge_for_resume(read_json(saved), present)
    try:
        return job(cls(**values))
    except SSLZooError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return None


def run_dirs(spec, what="run directories"):
    """The directories of a comma-separated list of globs (``--runs``), each pattern
    required to match; a UsageError names the one that matches nothing."""
    out = []
    for pattern in (p.strip() for p in spec.split(",") if p.strip()):
        found = sorted(d for d in glob.glob(pattern) if os.path.isdir(d))
        if not found:
            raise app.UsageError(f"--runs: {pattern!r} matches no directory")
        out += found
    if not out:
        raise app.UsageError(f"--runs is empty: give the {what}")
    return out
