"""Domain errors with stable codes. The API maps them to typed unions; handlers let them raise."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(PermissionDenied):
    code = "UNAUTHENTICATED"


class InvalidState(DomainError):
    code = "INVALID_STATE"


class ValidationFailed(DomainError):
    code = "VALIDATION_FAILED"

    @classmethod
    def on(cls, field: str, message: str) -> "ValidationFailed":
        return cls(f"{field}: {message}", problems=(FieldProblem(field, message),))
