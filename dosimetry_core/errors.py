"""Project exceptions: errors a user can cause, with messages a physicist understands.

The CLI prints ``str(error)`` on one line and exits non-zero; the GUI shows it in
its single error-display path.  Programming errors stay ordinary Python exceptions.
"""

from __future__ import annotations


class DosimetryError(Exception):
    """Base class of every error caused by input rather than by a bug."""


class InvalidInputError(DosimetryError):
    """A value entered by the user is impossible (negative mass, unknown nuclide, ...).

    ``field`` names the input that is wrong (e.g. ``"residual_activity_mbq"``,
    the name of the model attribute or command-line option without dashes), so
    a form can highlight the box and a script can tell which value to fix.  It
    is ``None`` when the problem is not one field's (e.g. two values that
    contradict each other are named in the message).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class DicomError(DosimetryError):
    """A DICOM file or series cannot be used; the message names the file and the problem."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnitsError(DosimetryError):
    """Image or measurement units are unknown or cannot be converted."""


class CalibrationError(DosimetryError):
    """A quantitative conversion needs a calibration that is missing or invalid."""


class StoreError(DosimetryError):
    """The case store cannot complete an operation (missing case, corrupt blob, ...)."""


class CaseNotFoundError(StoreError):
    """No case with the given identifier exists in the store."""


class ConcurrentModificationError(StoreError):
    """The case was changed by someone else since it was loaded."""


class Cancelled(DosimetryError):
    """A long computation was cancelled by the user."""


class PermissionDeniedError(DosimetryError):
    """The user's role does not allow the action; nothing was changed."""


class AuthenticationError(DosimetryError):
    """Wrong user name or password, or the account is locked or disabled."""


class IntegrityError(DosimetryError):
    """A signed record, a blob or the audit trail does not match its hash: tampering."""
