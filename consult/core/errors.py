"""Domain exceptions. Services raise these; one handler turns them into pages or JSON."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base class: a request that cannot be carried out, with a message for the user.

    ``code`` is the stable English identifier a JSON client reads (the message is translated,
    the code never is); subclasses name their own.
    """

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


class ValidationFailed(DomainError):
    """Input that does not pass the rules; ``errors`` maps a field (or "") to messages."""

    status_code = 400
    code = "validation_failed"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class Unauthenticated(DomainError):
    """The request needs a signed-in user and carries none (or an ended or expired one)."""

    status_code = 401
    code = "unauthenticated"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (e.g. a stage already moved on).

    ``field`` names the form field the clash is about, if any: a form shown again puts the
    message next to it.
    """

    status_code = 409
    code = "conflict"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CellError:
    """One problem in an imported file, located by its 1-based line and its column header."""

    line: int
    column: str
    message: str


class VoteClosed(Conflict):
    """A ballot arrived while the vote is not open (not yet, or no longer)."""

    code = "vote_closed"


class ImportRejected(DomainError):
    """A file with problems; nothing of it was written. ``errors`` lists every problem."""

    status_code = 400
    code = "validation_failed"

    def __init__(self, message: str, errors: list[CellError]) -> None:
        super().__init__(message)
        self.errors = errors
