"""``load``: a view's object, fetched and checked against the action the view declared."""

from __future__ import annotations

import pytest
from flask_login import login_user

from consult.core.errors import NotFound, PermissionDenied
from consult.core.policy import authorized, declared_action, load
from consult.process import printing
from consult.registry.models import Household
from tests import factories

EN = {"Accept-Language": "en"}


def test_load_checks_the_declared_action_on_the_object(app, compound):
    household = compound.buildings[0].households[0]
    member = factories.make_user("committee", compound=compound)
    stranger = factories.make_user("committee", compound=factories.make_compound("别的小区"))
    supervisor = factories.make_user("supervisor", compound=compound)
    path = f"/registry/households/{household.id}/edit"
    with app.test_request_context(path, headers=EN):
        assert declared_action() == "registry.edit"
        login_user(member)
        assert load(Household, household.id) is household
        assert authorized(household) is household
        with pytest.raises(NotFound, match="No such record"):
            load(Household, household.id + 10_000)
    for refused in (stranger, supervisor):  # outside the scope; a role without the action
        with app.test_request_context(path):
            login_user(refused)
            with pytest.raises(PermissionDenied):
                load(Household, household.id)


def test_load_takes_a_domains_getter_with_its_own_message(app, compound):
    with app.test_request_context("/print-jobs/1", headers=EN):
        login_user(factories.make_user("admin"))
        with pytest.raises(NotFound, match="No such print job"):
            load(printing.get_job_or_404, 10_000)


def test_load_outside_a_view_that_declares_an_action_is_a_mistake(app, compound):
    with app.test_request_context("/no-such-page"):
        assert declared_action() is None
        login_user(factories.make_user("admin"))
        with pytest.raises(LookupError):
            load(Household, compound.buildings[0].households[0].id)
