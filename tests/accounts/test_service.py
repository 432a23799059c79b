import pytest
from sqlalchemy import select

from consult.accounts import service as accounts
from consult.accounts.models import AccessCode, User
from consult.audit.models import AuditEvent
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions


def test_create_staff_user_hashes_the_password_and_audits(compound):
    admin = factories.make_user("admin")
    user = accounts.create_user(admin, username=" Li.Hong ", display_name="李红",
                                role="committee", password="a-long-password")
    assert user.username == "li.hong" and user.password_hash.startswith("scrypt:")
    assert user.check_password("a-long-password") and not user.check_password("wrong")
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor_label) == ("accounts.user.created", admin.username)
    assert "a-long-password" not in event.payload


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"username": "ab"}, "username"),
    ({"username": "has space"}, "username"),
    ({"password": "short"}, "password"),
    ({"display_name": ""}, "display_name"),
    ({"role": "emperor"}, "role"),
    ({"password": None}, "password"),
])
def test_create_user_validates(kwargs, field):
    values = {"username": "valid_name", "display_name": "名字", "role": "committee",
              "password": "long-enough-1", **kwargs}
    with pytest.raises(ValidationFailed) as e:
        accounts.create_user(None, **values)
    assert field in e.value.errors
    assert audit_actions() == []


def test_usernames_are_unique_case_insensitively():
    accounts.create_user(None, username="Zhang", display_name="张", role="admin",
                         password="long-enough-1")
    with pytest.raises(ValidationFailed):
        accounts.create_user(None, username="zhang", display_name="张", role="admin",
                             password="long-enough-1")


def test_the_last_active_admin_cannot_be_demoted_or_switched_off():
    admin = factories.make_user("admin")
    with pytest.raises(Conflict):
        accounts.update_user(None, admin, display_name="x", role="committee", active=True)
    with pytest.raises(Conflict):
        accounts.update_user(None, admin, display_name="x", role="admin", active=False)
    factories.make_user("admin")
    accounts.update_user(None, admin, display_name="x", role="committee", active=True)
    assert admin.role == "committee"


def test_staff_and_resident_roles_do_not_convert(compound):
    resident = factories.make_user("resident", compound=compound)
    with pytest.raises(ValidationFailed):
        accounts.update_user(None, resident, display_name="x", role="admin", active=True)


def test_scopes_by_compound_and_by_community(compound):
    user = factories.make_user("supervisor")
    assert user.scoped_compound_ids() == frozenset()
    accounts.add_scope(None, user, compound=compound)
    assert user.scoped_compound_ids() == {compound.id}
    sibling = factories.make_compound("同社区的另一个", community=compound.community)
    accounts.add_scope(None, user, community=compound.community)
    assert user.scoped_compound_ids() == {compound.id, sibling.id}
    with pytest.raises(Conflict):
        accounts.add_scope(None, user, compound=compound)
    accounts.remove_scope(None, user.scopes[0])
    assert user.scoped_compound_ids() == {compound.id, sibling.id}  # still via the community
    assert audit_actions() == ["accounts.scope.added"] * 2 + ["accounts.scope.removed"]


def test_only_committee_and_supervisors_have_scopes(compound):
    with pytest.raises(ValidationFailed):
        accounts.add_scope(None, factories.make_user("admin"), compound=compound)


def test_changing_a_role_away_from_scoped_drops_the_scopes(compound):
    factories.make_user("admin")
    user = factories.make_user("committee", compound=compound)
    accounts.update_user(None, user, display_name="x", role="admin", active=True)
    assert user.scopes == [] and user.scoped_compound_ids() == frozenset()


def test_authenticate_records_success_and_failure():
    user = factories.make_user("committee", username="wang")
    assert accounts.authenticate("wang", "wrong") is None
    assert user.failed_logins == 1
    assert accounts.authenticate("nobody", "x") is None
    assert accounts.authenticate(" WANG ", factories.PASSWORD) is user
    assert user.failed_logins == 0 and user.last_login_at is not None
    assert audit_actions() == ["accounts.login.failed", "accounts.login.failed",
                               "accounts.login.succeeded"]


def test_inactive_users_cannot_sign_in():
    factories.make_user("committee", username="gone", active=False)
    assert accounts.authenticate("gone", factories.PASSWORD) is None


# --- access codes -----------------------------------------------------------------------------


def test_access_code_is_twelve_random_digits_stored_only_as_a_keyed_hash(compound):
    household = compound.buildings[0].households[0]
    code = accounts.issue_access_code(None, household)
    assert len(code) == 12 and code.isdigit()
    stored = db.session.scalars(select(AccessCode)).one()
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    codes = {accounts.issue_access_code(None, household) for _ in range(20)}
    assert len(codes) == 20


def test_redeeming_creates_the_household_account_once(compound):
    household = compound.buildings[0].households[0]
    code = accounts.issue_access_code(None, household)
    user = accounts.redeem_access_code(accounts.format_code(code))
    assert user.role == "resident" and user.household is household
    assert user.password_hash is None and user.username == f"h{household.id:06d}"
    with pytest.raises(NotFound):
        accounts.redeem_access_code(code)  # used up
    second = accounts.issue_access_code(None, household)
    assert accounts.redeem_access_code(f" {second[:4]}-{second[4:8]} {second[8:]} ") is user
    assert audit_actions() == [
        "accounts.access_code.issued", "accounts.user.created", "accounts.access_code.redeemed",
        "accounts.login.succeeded", "accounts.access_code.issued",
        "accounts.access_code.redeemed", "accounts.login.succeeded"]


def test_a_new_code_revokes_the_old_one_and_revoking_works(compound):
    household = compound.buildings[0].households[0]
    old = accounts.issue_access_code(None, household)
    new = accounts.issue_access_code(None, household)
    with pytest.raises(NotFound):
        accounts.redeem_access_code(old)
    assert accounts.revoke_access_codes(None, household) == 1
    with pytest.raises(NotFound):
        accounts.redeem_access_code(new)
    assert accounts.revoke_access_codes(None, household) == 0
    assert accounts.open_access_code(household) is None


@pytest.mark.parametrize("text", ["", "123", "12345678901", "1234567890123", "abcdefghijkl",
                                  "１２３４５６７８９０１２", "000000000000"])
def test_malformed_or_unknown_codes_are_refused_alike(text):
    with pytest.raises(NotFound):
        accounts.redeem_access_code(text)


def test_switched_off_household_account_cannot_use_a_code(compound):
    household = compound.buildings[0].households[0]
    factories.make_user("resident", household=household, active=False)
    code = accounts.issue_access_code(None, household)
    with pytest.raises(NotFound):
        accounts.redeem_access_code(code)


def test_one_account_per_household(compound):
    household = compound.buildings[0].households[0]
    accounts.create_user(None, username="first", display_name="x", role="resident",
                         household=household)
    with pytest.raises(Conflict):
        accounts.create_user(None, username="second", display_name="x", role="resident",
                             household=household)


def test_user_scope_check_constraint_holds_in_the_database(compound):
    from consult.accounts.models import UserScope

    user = factories.make_user("committee")
    db.session.add(UserScope(user=user, community=compound.community, compound=compound))
    with pytest.raises(Exception, match=r"(?i)constraint|check"):
        db.session.flush()


def test_resident_role_requires_a_household_in_the_database():
    db.session.add(User(username="orphan", display_name="x", role="resident"))
    with pytest.raises(Exception, match=r"(?i)constraint|check"):
        db.session.flush()


def test_codes_for_a_whole_compound_in_address_order(compound):
    moved_in = compound.buildings[0].households[1]
    factories.make_user("resident", household=moved_in)
    told: list[tuple[int, int]] = []
    rows = accounts.issue_compound_codes(None, compound, only_new=True,
                                         progress=lambda done, total: told.append((done, total)))
    households = [h for b in compound.buildings for h in b.households]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (h.building.name, h.unit, h.room) for h in households if h is not moved_in]
    assert told == [(1, len(households))] * len(households)
    # The printed code signs in; only its hash was stored.
    code = rows[0][3]
    assert len(code.replace(" ", "")) == 12
    assert accounts.redeem_access_code(code).household_id == households[0].id
    assert len(accounts.issue_compound_codes(None, compound)) == len(households)
    lines = accounts.code_list(rows).decode("utf-8-sig").splitlines()
    assert lines[0] == "楼栋,单元,房号,访问码" and lines[1].endswith(code)
