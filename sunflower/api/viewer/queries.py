import strawberry
from strawberry import Info

from sunflower.api.permissions import signed_in


@strawberry.type(name="Viewer", description="The signed-in person, as the API sees them.")
class ViewerType:
    id: str
    roles: list[str]
    community_id: str | None
    department: str | None


@strawberry.type
class ViewerQueries:
    @strawberry.field(extensions=signed_in())
    def me(self, info: Info) -> ViewerType:
        p = info.context.require_principal()
        return ViewerType(
            id=p.id, roles=sorted(r.value for r in p.roles), community_id=p.community_id, department=p.department
        )
