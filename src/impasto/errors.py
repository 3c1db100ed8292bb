"""Exceptions raised by impasto; the CLI turns each into one line and exit code 2."""


class ImpastoError(Exception):
    """Base class of every error impasto reports to a user."""


class InputError(ImpastoError):
    """A file, value or option given by the user cannot be used.

    ``field`` names the setting at fault where there is one (a config field, e.g. "style_weight",
    which is also the studio's form field), and ``problem`` says what is wrong with it without
    naming it; the message names it as the CLI does ("--style-weight: ..."). Front ends map an
    error to their own field from these, never from the message's text."""

    def __init__(self, message: str, *, field: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem if problem is not None else message

    def __reduce__(self) -> tuple[object, ...]:
        # Across processes (the studio's worker, a batch's pool) the field and problem travel too.
        return type(self), self.args, {"field": self.field, "problem": self.problem}


class WeightsError(InputError):
    """A network weights file is missing, corrupt or of an unexpected layout."""
