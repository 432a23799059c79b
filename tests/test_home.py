from datetime import timedelta

from consult.consultations import workflow
from consult.consultations.states import Action
from consult.core.models import utcnow
from tests import factories

EN = {"Accept-Language": "en"}


def test_resident_home_shows_what_needs_them(client, login_as, compound):
    household = compound.buildings[0].households[0]
    soliciting = factories.make_consultation(compound, title="征集意见的议题", stage="soliciting")
    voting = factories.make_consultation(compound, items=1, title="正在投票的议题")
    factories.walk_to(voting, "discussing")
    voting.vote_deadline = utcnow() + timedelta(days=3)
    workflow.apply(voting, Action.OPEN_VOTE, None)
    login_as("resident", household=household)
    page = client.get("/", headers=EN).text
    assert "What needs you now" in page
    assert soliciting.title in page and voting.title in page and "Vote now" in page
    assert page.index(voting.title) < page.index(soliciting.title)  # nearest deadline first


def test_public_home_lists_recent_consultations(client, compound):
    c = factories.make_consultation(compound, title="公开的议题", stage="discussing")
    draft = factories.make_consultation(compound, title="草稿议题")
    page = client.get("/").text
    assert c.title in page and draft.title not in page
