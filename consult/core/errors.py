"""Domain exceptions. Services raise these; one handler turns them into pages or JSON."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base class: a request that cannot be carried out, with a message for the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


class ValidationFailed(DomainError):
    """Input that does not pass the rules; ``errors`` maps a field (or "") to messages."""

    status_code = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class PermissionDenied(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """The request clashes with the current state (e.g. a stage already moved on).

    ``field`` names the form field the clash is about, if any: a form shown again puts the
    message next to it.
    """

    status_code = 409

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CellError:
    """One problem in an imported file, located by its 1-based line and its column header."""

    line: int
    column: str
    message: str


class ImportRejected(DomainError):
    """A file with problems; nothing of it was written. ``errors`` lists every problem."""

    status_code = 400

    def __init__(self, message: str, errors: list[CellError]) -> None:
        super().__init__(message)
        self.errors = errors
