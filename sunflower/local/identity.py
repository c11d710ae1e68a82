"""Local people in the dev stack's Cognito pool, and tokens for trying the API."""

import secrets

from sunflower.auth.principals import Role
from sunflower.aws.clients import client


def issue_token(
    user_pool_id: str,
    client_id: str,
    *,
    user: str,
    roles: list[Role],
    community_id: str | None = None,
    department: str | None = None,
) -> str:
    """Create or update the user with these groups and attributes, sign in, return the ID token."""
    cognito = client("cognito-idp")
    attributes = [{"Name": "custom:person_id", "Value": user}]
    if community_id:
        attributes.append({"Name": "custom:community_id", "Value": community_id})
    if department:
        attributes.append({"Name": "custom:department", "Value": department})
    try:
        cognito.admin_create_user(
            UserPoolId=user_pool_id, Username=user, MessageAction="SUPPRESS", UserAttributes=attributes
        )
    except cognito.exceptions.UsernameExistsException:
        cognito.admin_update_user_attributes(UserPoolId=user_pool_id, Username=user, UserAttributes=attributes)
    current = {g["GroupName"] for g in cognito.admin_list_groups_for_user(UserPoolId=user_pool_id, Username=user)["Groups"]}
    wanted = {r.value for r in roles}
    for group in current - wanted:
        cognito.admin_remove_user_from_group(UserPoolId=user_pool_id, Username=user, GroupName=group)
    for group in wanted - current:
        cognito.admin_add_user_to_group(UserPoolId=user_pool_id, Username=user, GroupName=group)
    password = "Sf1-" + secrets.token_urlsafe(24)  # a fresh one-off password: only this command signs in
    cognito.admin_set_user_password(UserPoolId=user_pool_id, Username=user, Password=password, Permanent=True)
    result = cognito.admin_initiate_auth(
        UserPoolId=user_pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": password},
    )
    return result["AuthenticationResult"]["IdToken"]
