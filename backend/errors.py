"""Typed errors. Each carries a sentence a non-expert understands and what to do next."""

from __future__ import annotations

import errno
import os


class FlurryError(Exception):
    """Base of every error the UI turns into a plain message."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigurationError(FlurryError):
    """The warehouse setting is missing or malformed."""


class WarehouseLockedError(FlurryError):
    """Another process holds the embedded database file."""


class TableNotFoundError(FlurryError):
    """A table the user picked no longer exists (or never did)."""


class InvalidIdentifierError(FlurryError):
    """A name cannot be used as a table, column or function name."""


class EmptyTableError(FlurryError):
    """The table has no rows to learn from."""


class InvalidTargetError(FlurryError):
    """The chosen target cannot be predicted (all null, one value, ...)."""


class InvalidTrainingOptionError(FlurryError):
    """A training option is out of range."""


class TrainingFailedError(FlurryError):
    """The training job ended without a model."""


class ArtifactIntegrityError(FlurryError):
    """A model artifact is missing or its checksum does not match what Flurry wrote."""


class ExplanationRefusedError(FlurryError):
    """SHAP values failed the sanity check (their sum is not the model's output, or one is out of range)."""


class ModelNotFoundError(FlurryError):
    """No model version (or deployment) has that id."""


class DeploymentError(FlurryError):
    """A model could not be deployed or a table could not be scored."""


class WarehouseQueryError(FlurryError):
    """The warehouse refused a statement (privileges, a missing object, a quota); its own reason is kept."""


class UploadError(FlurryError):
    """An uploaded file cannot become a table."""


class RunAlreadyEndedError(FlurryError):
    """A run's outcome arrived after the run had ended another way (cancelled, interrupted); it is not kept."""


class StorageFullError(FlurryError):
    """A disk (or its quota, or the process's file-size limit) had no room for a file Flurry was writing."""


# a full disk, a full quota, a file-size limit: each means "no room", and each is fixed the same way
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# the system's words for them, which a database's own error carries ("Could not write file …: File too large")
_NO_ROOM_WORDS = tuple(os.strerror(code) for code in _NO_ROOM)


def no_room(exc: BaseException) -> bool:
    """Whether `exc` says a disk had no room: an OSError with one of those codes, or an error that says so only
    in its message (the embedded database's; pyarrow's OSError, which carries no errno)."""
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        return True
    return any(words in str(exc) for words in _NO_ROOM_WORDS)


def storage_full(what: str, where: object) -> StorageFullError:
    return StorageFullError(f"There was no room left on the disk to write {what} ({where}).",
                            hint="Free some space on that disk (or raise its quota), then try again; "
                                 "nothing was kept half-written.")
