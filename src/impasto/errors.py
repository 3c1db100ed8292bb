"""Exceptions raised by impasto; the CLI turns each into one line and exit code 2."""


class ImpastoError(Exception):
    """Base class of every error impasto reports to a user."""


class InputError(ImpastoError):
    """A file, value or option given by the user cannot be used."""


class WeightsError(InputError):
    """A network weights file is missing, corrupt or of an unexpected layout."""
