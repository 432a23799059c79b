"""The policy table on stand-in users and targets (no database)."""

from dataclasses import dataclass, field

import pytest

from consult.core.errors import PermissionDenied
from consult.core.policy import ACTION_LABELS, POLICY, Grant, Role, authorize, can, compound_scope


@dataclass
class FakeUser:
    role: str
    scope: frozenset = field(default_factory=frozenset)
    household_id: int | None = None
    is_authenticated: bool = True

    def scoped_compound_ids(self):
        return self.scope


@dataclass
class Target:
    scope_compound_id: int | None = None
    scope_household_id: int | None = None


ANON = FakeUser("anonymous", is_authenticated=False)


def test_every_action_has_a_label_and_known_roles():
    assert set(POLICY) == set(ACTION_LABELS)
    for grants in POLICY.values():
        assert all(isinstance(role, Role) and isinstance(g, Grant) for role, g in grants.items())


def test_scoped_grants_follow_the_target_compound():
    committee = FakeUser("committee", frozenset({1, 2}))
    assert can(committee, "registry.edit", Target(1))
    assert not can(committee, "registry.edit", Target(3))
    assert not can(committee, "registry.edit", Target(None))
    assert can(committee, "registry.edit")  # role level: may edit somewhere
    assert compound_scope(committee, "registry.edit") == frozenset({1, 2})


def test_admin_reaches_everything_and_anonymous_nothing_private():
    admin = FakeUser("admin")
    assert can(admin, "registry.edit", Target(99)) and compound_scope(admin, "audit.view") is None
    assert not can(ANON, "registry.view")
    assert can(ANON, "public.view")
    assert compound_scope(ANON, "registry.view") == frozenset()


def test_supervisor_reads_but_never_edits():
    supervisor = FakeUser("supervisor", frozenset({1}))
    assert can(supervisor, "registry.view", Target(1))
    assert can(supervisor, "audit.view", Target(1))
    assert not can(supervisor, "registry.edit", Target(1))
    assert not can(supervisor, "registry.import")


def test_resident_has_no_registry_access():
    resident = FakeUser("resident", household_id=5)
    assert not can(resident, "registry.view", Target(1, 5))
    assert can(resident, "account.self")


def test_authorize_explains_the_refusal():
    with pytest.raises(PermissionDenied) as e:
        authorize(FakeUser("supervisor", frozenset({1})), "registry.edit", Target(1))
    assert "Supervisor" in e.value.message and "edit the household registry" in e.value.message
    with pytest.raises(PermissionDenied) as e:
        authorize(FakeUser("committee", frozenset({1})), "registry.edit", Target(2))
    assert "outside the compounds assigned to you" in e.value.message
