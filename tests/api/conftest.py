from datetime import timedelta
from typing import Any

import pytest

from consult.accounts import tokens
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.process import workflow
from tests import factories

EN = {"Accept-Language": "en"}


def bearer(user: Any, **headers: str) -> dict[str, str]:
    """Headers of a request signed in as ``user`` with a fresh API sign-in."""
    pair = tokens.issue(user, tokens.API_CODE)
    return {"Authorization": f"Bearer {pair.access_token}", **EN, **headers}


@pytest.fixture
def voting(compound):
    """A consultation with two items whose vote is open for another week."""
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


@pytest.fixture
def resident(compound):
    return factories.make_user("resident", household=compound.buildings[0].households[0])
