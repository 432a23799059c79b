"""Irreversible steps are asked again on a page that says what will happen, with the numbers;
settings that can no longer change are shown read-only with the reason; a clash brings the
form back with what was typed and the message at its field."""

import html
from datetime import timedelta

from flask_babel import force_locale
from sqlalchemy import func, select

from consult.accounts import service as accounts
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import service
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.core.times import utc_to_local
from consult.extensions import db
from consult.notices.models import PrintJob
from consult.process import workflow
from consult.registry.models import Building, Household
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def discussing(compound, items: int = 2):
    """A consultation under discussion whose vote can open (deadline on a whole minute, as
    typed in the form)."""
    c = factories.make_consultation(compound, stage="discussing", items=items)
    c.vote_deadline = (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0)
    db.session.flush()
    return c


def test_opening_the_vote_asks_first_with_the_roll_and_the_items(client, login_as, compound):
    login_as("committee", compound=compound)
    c = discussing(compound, items=3)
    first = db.session.scalars(select(Building).where(Building.compound_id == compound.id)
                               .order_by(Building.id)).first()
    service.set_scope(None, c, [(first.id, None)])  # 4 of the compound's 8 households
    db.session.flush()
    before = audit_actions()
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "open_vote"}, headers=EN)
    page = text(r)
    assert r.status_code == 200
    assert "The electoral roll of 4 households in 1 building is frozen" in page
    assert "The proposal's 3 items can no longer change" in page
    assert "Yes: Open the vote" in page and 'name="confirmed" value="1"' in page
    assert f'href="/consultations/{c.id}"' in page  # Cancel leads back
    # Nothing happened yet.
    assert c.stage == "discussing" and c.vote_opened_at is None
    assert audit_actions() == before
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "open_vote", "confirmed": "1"}, headers=EN)
    assert r.status_code == 302 and c.stage == "voting"
    assert audit_actions()[-2:] == ["consultation.stage_changed", "audit.anchor"]


def test_the_whole_compound_counts_every_building(client, login_as, compound):
    login_as("committee", compound=compound)
    c = discussing(compound)
    page = text(client.post(f"/consultations/{c.id}/stage", data={"action": "open_vote"},
                            headers=EN))
    assert "The electoral roll of 8 households in 2 buildings is frozen" in page


def test_a_step_that_cannot_be_taken_says_why_instead_of_asking(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="discussing")  # no deadline
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "open_vote"}, headers=EN,
                    follow_redirects=True)
    assert "Set a voting deadline in the future." in text(r)
    assert "Yes: Open the vote" not in text(r) and c.stage == "discussing"


def test_closing_the_vote_counts_who_voted(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)
    factories.walk_to(c, "voting")  # every household voted on paper
    before = audit_actions()
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "close_vote"}, headers=EN)
    page = text(r)
    assert r.status_code == 200
    assert "All 8 households on the roll have voted." in page
    assert "The result is counted from the ballots as they stand at the close" in page
    assert "Yes: Close the vote and count" in page
    assert c.stage == "voting" and c.vote_closed_at is None and audit_actions() == before
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "close_vote", "confirmed": "1"}, headers=EN)
    assert r.status_code == 302 and c.stage == "vote_counted"


def test_closing_names_those_who_did_not_vote(compound):
    c = discussing(compound)
    workflow.apply(c, Action.OPEN_VOTE, None)
    households = list(db.session.scalars(select(Household).order_by(Household.id)))
    for household in households[:3]:
        ballots.cast(None, c, household, {item.id: "agree" for item in c.items},
                     BallotChannel.PAPER)
    with force_locale("en"):
        lines = workflow.consequences(c, Action.CLOSE_VOTE)
    assert ("3 of the 8 households on the roll have voted; 5 households can no longer vote."
            in lines)


def test_publishing_the_resolution_says_how_long_it_stays_up(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)
    factories.walk_to(c, "vote_counted")
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "publish_resolution"},
                    headers=EN)
    page = text(r)
    assert "The notice stays up for 7 days, until" in page
    assert "households may object until then" in page
    assert c.stage == "vote_counted"
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "publish_resolution", "confirmed": "1"}, headers=EN)
    assert r.status_code == 302 and c.stage == "resolution_public"


def test_the_reason_typed_first_is_carried_to_the_confirmation(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="proposing")
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "withdraw", "reason": "与<b>电梯</b>议题合并"}, headers=EN)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and c.stage == "proposing"
    assert "与&lt;b&gt;电梯&lt;/b&gt;议题合并</textarea>" in page
    assert "The consultation stops at" in html.unescape(page)
    assert "Its 2 items are not voted on." in html.unescape(page)
    # Without a reason the step is not even asked: the reason is missing.
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "withdraw"}, headers=EN,
                    follow_redirects=True)
    assert "Give a reason." in text(r) and c.stage == "proposing"
    r = client.post(f"/consultations/{c.id}/stage", data={
        "action": "withdraw", "reason": "与电梯议题合并", "confirmed": "1"}, headers=EN)
    assert r.status_code == 302 and c.stage == "withdrawn"


def test_reversible_steps_stay_one_click(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "start_soliciting"})
    assert r.status_code == 302 and c.stage == "soliciting"


def test_access_letters_ask_first_with_the_codes_they_replace(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="soliciting")
    households = list(db.session.scalars(select(Household).order_by(Household.id)))
    for household in households[:3]:
        accounts.issue_access_code(None, household)
    factories.make_user("resident", household=households[7])  # has an account: no letter
    db.session.flush()
    r = client.post(f"/consultations/{c.id}/print/access-letters", headers=EN)
    page = text(r)
    assert r.status_code == 200
    assert "printed for each of the 7 households" in page
    assert "The unused codes of 3 households stop working" in page
    assert "Yes: print the letters" in page
    assert db.session.scalar(select(func.count(PrintJob.id))) == 0
    assert all(accounts.open_access_code(h) is not None for h in households[:3])
    r = client.post(f"/consultations/{c.id}/print/access-letters", data={"confirmed": "1"})
    assert r.status_code == 302
    assert db.session.scalar(select(func.count(PrintJob.id))) == 1


def test_other_batches_print_at_once(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="soliciting")
    assert client.post(f"/consultations/{c.id}/print/solicitation").status_code == 302


# --- settings during the vote -----------------------------------------------------------------


def voting(compound):
    c = discussing(compound)
    workflow.apply(c, Action.OPEN_VOTE, None)
    db.session.flush()
    return c


def browser_form(c, **changes: str) -> dict[str, str]:
    """What a browser sends from the settings page during the vote: the fields that are not
    disabled."""
    data = {"locale": c.locale, "publicity_days": str(c.publicity_days), "proxy_cap": "",
            "solicitation_deadline": "",
            "vote_deadline": utc_to_local(c.vote_deadline).strftime("%Y-%m-%dT%H:%M")}
    data.update(changes)
    return data


def test_settings_during_the_vote_show_frozen_fields_with_the_reason(client, login_as,
                                                                     compound):
    login_as("committee", compound=compound)
    c = voting(compound)
    page = client.get(f"/consultations/{c.id}/edit", headers=EN).get_data(as_text=True)
    for name in ("title", "summary", "rule_code", "secrecy", "double_entry",
                 "proxy_document_required", "conditions-0-fraction"):
        tag = page[page.rindex("<", 0, page.index(f'id="{name}"')):page.index(">", page.index(
            f'id="{name}"'))]
        assert "disabled" in tag, name
    for name in ("locale", "publicity_days", "vote_deadline"):
        tag = page[page.rindex("<", 0, page.index(f'id="{name}"')):page.index(">", page.index(
            f'id="{name}"'))]
        assert "disabled" not in tag, name
    page = html.unescape(page)
    assert 'id="title-locked"' in page
    assert "The proposal cannot change once voting has started." in page
    assert "The decision rule and the ballot secrecy are fixed once voting has started." in page
    assert "How paper ballots are entered is fixed once voting has started." in page


def test_a_browser_saves_what_can_still_change_during_the_vote(client, login_as, compound):
    login_as("committee", compound=compound)
    c = voting(compound)
    title, secrecy = c.title, c.secrecy
    r = client.post(f"/consultations/{c.id}/edit", data=browser_form(c, publicity_days="9"))
    assert r.status_code == 302
    assert c.publicity_days == 9 and c.title == title and c.secrecy == secrecy


def test_a_tampered_post_cannot_change_frozen_settings(client, login_as, compound):
    login_as("committee", compound=compound)
    c = voting(compound)
    title, secrecy = c.title, c.secrecy
    r = client.post(f"/consultations/{c.id}/edit", headers=EN, data=browser_form(
        c, publicity_days="12", title="偷偷改的标题", secrecy="confidential"))
    page = text(r)
    assert r.status_code == 409
    assert c.title == title and c.secrecy == secrecy and c.publicity_days == 7
    # The form comes back with the other edit kept and the message at the field.
    assert 'value="12"' in page
    message = "The proposal cannot change once voting has started."
    assert 'id="title-error"' in page
    assert message in page[page.index('id="title-error"'):][:300]
    assert "Go to the home page" not in page


def test_a_conflict_on_the_item_form_keeps_what_was_typed(client, login_as, compound):
    login_as("committee", compound=compound)
    c = discussing(compound)
    item = c.items[0]
    page = client.get(f"/consultations/{c.id}/items/{item.id}/edit").get_data(as_text=True)
    assert 'name="title"' in page
    workflow.apply(c, Action.OPEN_VOTE, None)  # meanwhile another member opened the vote
    db.session.flush()
    r = client.post(f"/consultations/{c.id}/items/{item.id}/edit", headers=EN, data={
        "title": "新的标题：更换路灯", "description": "我刚写的说明", "cost": "12"})
    page = text(r)
    assert r.status_code == 409
    assert "新的标题：更换路灯" in page and "我刚写的说明" in page
    assert "The proposal cannot change once voting has started." in page
    assert 'name="description"' in page and 'name="cost" type="text" value="12"' in page
    assert "Go to the home page" not in page
    assert item.title != "新的标题：更换路灯"


def test_the_scope_during_the_vote_is_read_only_and_a_post_comes_back_on_it(client, login_as,
                                                                            compound):
    login_as("committee", compound=compound)
    c = voting(compound)
    page = text(client.get(f"/consultations/{c.id}/scope", headers=EN))
    assert "The scope is fixed once voting has started." in page
    assert 'disabled aria-describedby="scope-locked"' in page
    assert ">Save</button>" not in page
    building = db.session.scalars(select(Building)).first()
    r = client.post(f"/consultations/{c.id}/scope", data={"part": f"building:{building.id}"},
                    headers=EN)
    page = text(r)
    assert r.status_code == 409 and c.scopes == []
    assert "The scope is fixed once voting has started." in page
    assert f'value="building:{building.id}" id="b{building.id}" checked' in page


def test_a_conflict_outside_a_form_offers_the_way_back(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)  # a draft: no paper ballots yet
    r = client.post(f"/consultations/{c.id}/print/ballots", headers={
        **EN, "Referer": f"http://localhost/consultations/{c.id}"})
    page = text(r)
    assert r.status_code == 409
    assert "Paper ballots are printed before or while the vote is open." in page
    assert f'href="/consultations/{c.id}">Back to the page you came from' in page
    # Another site's page is no way back.
    r = client.post(f"/consultations/{c.id}/print/ballots", headers={
        **EN, "Referer": "http://evil.example/consultations/1"})
    assert "Back to the page you came from" not in text(r)
