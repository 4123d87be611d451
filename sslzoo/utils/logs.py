"""Logging that keeps the console readable: TFDS's and TensorFlow's INFO lines are dropped."""
import logging

from absl import logging as absl_logging


class _DropTFDSInfo(logging.Filter):
    def filter(self, record):
        return record.levelno > logging.INFO or not any(
            lib in record.pathname for lib in ("tensorflow_datasets", "/tensorflow/"))


def quiet_tfds():
    """Hide the INFO messages of TFDS (dataset info, reader) and TensorFlow (checkpoint
    sharding) from absl's console output; warnings and errors still show."""
    handler = absl_logging.get_absl_handler()
    if not any(isinstance(f, _DropTFDSInfo) for f in handler.filters):
        handler.addFilter(_DropTFDSInfo())
