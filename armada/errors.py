"""The one exception type a user can cause; the CLI prints it without a traceback."""


class ArmadaError(Exception):
    """A problem with the user's input, data, cache or environment, said so they can fix it."""


class ConfigError(ArmadaError):
    """A pipeline file, `--set` override or flag that is not a valid configuration."""
