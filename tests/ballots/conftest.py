from datetime import timedelta

import pytest

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.process import workflow
from tests import factories


@pytest.fixture
def voting(compound):
    """A consultation with two items whose vote is open for another week."""
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c
