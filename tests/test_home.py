from datetime import timedelta

from flask_babel import force_locale

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
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


HANT = {"Accept-Language": "zh-TW"}


def test_the_method_is_named_in_the_readers_script(client, compound):
    page = client.get("/", headers=HANT).text
    for term in ("一徵", "一議", "二議", "三議", "一公開", "二公開"):
        assert f"（{term}）" in page or f"({term})" in page, term
    assert "议" not in page and "公开" not in page
    simplified = client.get("/").text
    assert "一议" in simplified and "二公开" in simplified
    assert "一议" in client.get("/", headers=EN).text  # English keeps the method's own names


def test_stage_chips_are_in_the_readers_script(client, compound):
    c = factories.make_consultation(compound, title="加装电梯", stage="discussing")
    page = client.get(f"/consultations/{c.id}", headers=HANT).text
    assert "二議" in page and "三議" in page and "二公開" in page
    assert "二议" not in page and "公开" not in page


def test_a_households_account_is_named_in_the_readers_language(client, compound):
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household)
    with force_locale("zh_Hans"):  # named in Simplified Chinese when it was made
        user.display_name = household.label
    assert "单元" in user.display_name
    factories.sign_in(client, user)
    for path in ("/", "/account"):
        page = client.get(path, headers=HANT).text
        assert "單元" in page and "单元" not in page, path
    page = client.get("/", headers=EN).text
    assert "unit 1" in page and "单元" not in page
    # A name typed in for the account stays as typed.
    user.display_name = "王家（1单元）"
    db.session.commit()
    page = client.get("/account", headers=HANT).text
    assert "王家（1单元）" in page
