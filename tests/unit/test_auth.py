import pytest
from coaching.auth import Role, principal_from_claims, principal_from_event
from coaching.domain.errors import Forbidden, Unauthorized


@pytest.mark.parametrize(
    "groups",
    ["org_admin,leader", "[org_admin leader]", '["org_admin","leader"]', ["org_admin", "leader"], "org_admin leader"],
)
def test_groups_claim_is_parsed_in_every_shape_api_gateway_produces(groups):
    principal = principal_from_claims({"sub": "p1", "custom:org_id": "o1", "cognito:groups": groups})
    assert principal.roles == frozenset({Role.ORG_ADMIN, Role.LEADER})
    assert principal.org_id == "o1"
    assert principal.person_id == "p1"


def test_person_claim_wins_over_sub():
    principal = principal_from_claims({"sub": "cognito-sub", "custom:person_id": "p9", "cognito:groups": "employee"})
    assert principal.person_id == "p9"


def test_unknown_roles_are_ignored_and_no_role_is_forbidden():
    with pytest.raises(Forbidden):
        principal_from_claims({"sub": "p1", "cognito:groups": "admin,superuser"})


@pytest.mark.parametrize("event", [{}, {"requestContext": {}}, {"requestContext": {"authorizer": {"claims": {}}}}])
def test_missing_claims_are_unauthorized(event):
    with pytest.raises(Unauthorized):
        principal_from_event(event)


def test_object_check_refuses_another_tenant():
    principal = principal_from_claims({"sub": "p1", "custom:org_id": "org-b", "cognito:groups": "org_admin"})
    principal.require_same_org("org-b", Role.ORG_ADMIN)
    with pytest.raises(Forbidden):
        principal.require_same_org("org-a", Role.ORG_ADMIN)
    with pytest.raises(Forbidden):
        principal.require_same_org("org-b", Role.FINANCE)
