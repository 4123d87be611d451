"""Logging that keeps the console readable: TFDS's per-load INFO lines are dropped."""
import logging

from absl import logging as absl_logging


class _DropTFDSInfo(logging.Filter):
    def filter(self, record):
        return record.levelno > logging.INFO or "tensorflow_datasets" not in record.pathname


def quiet_tfds():
    """Hide TFDS's INFO messages (dataset info, reader, builder) from absl's console output."""
    handler = absl_logging.get_absl_handler()
    if not any(isinstance(f, _DropTFDSInfo) for f in handler.filters):
        handler.addFilter(_DropTFDSInfo())
