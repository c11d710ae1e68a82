"""Typed mutation errors, and masking of everything the client should not see."""

import logging
from collections.abc import Callable
from typing import TypeVar

import strawberry
from strawberry.extensions import MaskErrors
from strawberry.relay import GlobalIDValueError

from graphql import GraphQLError
from sunflower.common import errors

logger = logging.getLogger("sunflower.api")
T = TypeVar("T")
S = TypeVar("S")


@strawberry.interface(name="Error", description="Why a mutation did not happen; nothing was changed.")
class ErrorType:
    code: str
    message: str


@strawberry.type(name="FieldError")
class FieldErrorType:
    field: str
    message: str


@strawberry.type(name="ValidationError")
class ValidationErrorType(ErrorType):
    fields: list[FieldErrorType]


@strawberry.type(name="NotFoundError")
class NotFoundErrorType(ErrorType):
    pass


@strawberry.type(name="AlreadyExistsError")
class AlreadyExistsErrorType(ErrorType):
    pass


@strawberry.type(name="PermissionDeniedError")
class PermissionDeniedErrorType(ErrorType):
    pass


@strawberry.type(name="InvalidStateError")
class InvalidStateErrorType(ErrorType):
    pass


def error_of(exc: errors.DomainError) -> ErrorType:
    if isinstance(exc, errors.ValidationFailed):
        fields = [FieldErrorType(field=_camel(p.field), message=p.message) for p in exc.problems]
        return ValidationErrorType(code=exc.code, message=exc.message, fields=fields)
    kind = {
        errors.NotFound: NotFoundErrorType,
        errors.AlreadyExists: AlreadyExistsErrorType,
        errors.PermissionDenied: PermissionDeniedErrorType,
        errors.InvalidState: InvalidStateErrorType,
    }
    for cls in type(exc).__mro__:
        if cls in kind:
            return kind[cls](code=exc.code, message=exc.message)
    raise exc


def _camel(name: str) -> str:
    """Domain rules name fields in snake_case (as import columns do); GraphQL clients know camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def mutate(operation: Callable[[], T], success: Callable[[T], S]) -> S | ErrorType:
    """Run a service call; a domain error becomes the payload's typed error member."""
    try:
        result = operation()
    except errors.DomainError as exc:
        return error_of(exc)
    return success(result)


def log_unexpected(errors_: list[GraphQLError]) -> None:
    """Only what was masked is worth a stack trace; expected errors reached the client as they are."""
    for error in errors_:
        if not _expected(error):
            logger.error("unexpected error at %s", error.path, exc_info=error.original_error)


def _expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (errors.DomainError, GraphQLError, GlobalIDValueError))


class DomainErrorMasking(MaskErrors):
    """Domain errors keep their message and gain `extensions.code`; anything unexpected is masked."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _expected(e), error_message="Unexpected error.")

    def _process_errors(self, errors_: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors_:
            original = error.original_error
            if isinstance(original, errors.DomainError):
                error.extensions = {**(error.extensions or {}), "code": original.code}
            elif isinstance(original, GlobalIDValueError):
                error.message = "not an id this API issued"
                error.extensions = {"code": errors.ValidationFailed.code}
            elif original is None and not (error.extensions or {}).get("code"):
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}
            elif not _expected(error):
                masked = self.anonymise_error(error)
                masked.extensions = {"code": "INTERNAL"}
                processed.append(masked)
                continue
            processed.append(error)
        return processed
