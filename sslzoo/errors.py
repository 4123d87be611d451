"""Exception types. Every error a user can cause names the problem and the fix."""


class SSLZooError(Exception):
    """Base class of all sslzoo errors."""


class ConfigError(SSLZooError, ValueError):
    """A bad name, flag or hyperparameter."""


class DataError(SSLZooError, ValueError):
    """Missing, empty or unreadable data."""


class WeightsError(SSLZooError, ValueError):
    """A weights file that is missing, corrupt or of another architecture."""


class TrainingError(SSLZooError, RuntimeError):
    """Training cannot go on (for example a NaN loss)."""


def unknown_choice(kind, name, choices):
    """A ConfigError for an unknown `name` that lists the valid `choices`."""
    listed = ", ".join(sorted(choices))
    return ConfigError(f"unknown {kind} {name!r}; valid choices: {listed}")
