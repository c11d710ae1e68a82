"""Declared permissions. Services check again: functions can call them without GraphQL."""

from typing import Any, ClassVar

from strawberry import Info
from strawberry.permission import BasePermission, PermissionExtension

from sunflower.auth.principals import Role


class IsAuthenticated(BasePermission):
    message = "Sign in first: this field needs a bearer token"
    error_extensions: ClassVar[dict[str, str]] = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal is not None


class HasRole(BasePermission):
    error_extensions: ClassVar[dict[str, str]] = {"code": "PERMISSION_DENIED"}

    def __init__(self, *roles: Role) -> None:
        self.roles = roles
        self.message = f"This field needs one of the roles: {', '.join(r.value for r in roles)}"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.has_any(*self.roles)


def signed_in() -> list[PermissionExtension]:
    return [PermissionExtension(permissions=[IsAuthenticated()], use_directives=False)]


def roles(*allowed: Role) -> list[PermissionExtension]:
    """Field extensions for a field only these roles may use."""
    return [PermissionExtension(permissions=[IsAuthenticated(), HasRole(*allowed)], use_directives=False)]
