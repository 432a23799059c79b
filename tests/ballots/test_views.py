import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from consult.ballots import service as ballots
from consult.ballots.models import Ballot
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}



def fields(c, *values):
    return {f"item_{item.id}": v for item, v in zip(c.items, values, strict=True)}


def test_resident_votes_in_three_screens_and_changes_the_vote(client, login_as, voting, compound):
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    page = client.get(f"/consultations/{voting.id}/vote", headers=EN)
    assert page.status_code == 200 and 'type="radio"' in page.text and "<script" not in page.text
    review = client.post(f"/consultations/{voting.id}/vote",
                         data=fields(voting, "agree", "disagree"), headers=EN)
    assert review.status_code == 200 and "Send my vote" in review.text
    assert db.session.scalar(select(func.count(Ballot.id))) == 0  # nothing sent yet
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text).group(1)
    r = client.post(f"/consultations/{voting.id}/vote/confirm",
                    data={**fields(voting, "agree", "disagree"), "submission": token})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/{voting.id}/ballot")
    ballot = ballots.ballot_of(voting, household.id)
    receipt = client.get(f"/consultations/{voting.id}/ballot", headers=EN).text
    assert ballot.receipt in receipt and "Change my vote" in receipt
    # The same form sent again (a double click) is not counted twice.
    again = client.post(f"/consultations/{voting.id}/vote/confirm",
                        data={**fields(voting, "agree", "disagree"), "submission": token},
                        headers=EN, follow_redirects=True)
    assert "already recorded" in again.text and ballot.version == 1
    # Changing: the previous answers are preselected; the new one replaces them.
    assert 'value="agree" checked' in client.get(f"/consultations/{voting.id}/vote").text
    client.post(f"/consultations/{voting.id}/vote/confirm",
                data={**fields(voting, "abstain", "abstain"), "submission": "new-token"})
    assert ballot.version == 2
    assert audit_actions()[-2:] == ["ballot.cast", "ballot.changed"]


def test_missing_answers_are_shown_next_to_the_item(client, login_as, voting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{voting.id}/vote", data=fields(voting, "agree", ""),
                    headers=EN)
    assert r.status_code == 400 and "Choose an answer for item 2" in r.text


def test_tampered_forms_and_other_households_are_refused(client, login_as, voting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{voting.id}/vote/confirm",
                    data={**fields(voting, "agree", "agree"), "item_999999": "agree"})
    assert r.status_code == 400
    r = client.post(f"/consultations/{voting.id}/vote/confirm",
                    data=fields(voting, "agree", "yes please"))
    assert r.status_code == 400
    assert db.session.scalar(select(func.count(Ballot.id))) == 0
    # Voting is always for the signed-in household: no form field can name another.
    r = client.post(f"/consultations/{voting.id}/vote/confirm",
                    data={**fields(voting, "agree", "agree"),
                          "household_id": compound.buildings[1].households[0].id})
    assert r.status_code == 302
    assert ballots.ballot_of(voting, compound.buildings[1].households[0].id) is None


def test_no_vote_outside_the_voting_stage_or_after_the_deadline(client, login_as, compound):
    c = factories.make_consultation(compound, items=1, stage="discussing")
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{c.id}/vote/confirm", data=fields(c, "agree"), headers=EN)
    assert r.status_code == 409 and "Voting is not open" in r.text
    factories.walk_to(c, "voting")
    c.vote_deadline = utcnow() - timedelta(seconds=1)
    db.session.flush()
    r = client.post(f"/consultations/{c.id}/vote/confirm", data=fields(c, "disagree"),
                    headers=EN)
    assert r.status_code == 409
    assert {ch.choice for ch in ballots.ballot_of(c, compound.buildings[0].households[0].id)
            .choices} == {"agree"}  # walk_to's ballot stands


def test_residents_out_of_scope_cannot_vote(client, login_as, voting):
    other = factories.make_compound("别处")
    login_as("resident", compound=other)
    assert client.get(f"/consultations/{voting.id}/vote").status_code == 403


def test_committee_enters_paper_and_proxy_ballots(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    h1, h2 = compound.buildings[0].households[:2]
    r = client.post(f"/consultations/{voting.id}/ballots/{h1.id}/enter", data={
        "channel": "paper", "serial": "P-0001", **fields(voting, "agree", "disagree")})
    assert r.status_code == 302
    r = client.post(f"/consultations/{voting.id}/ballots/{h2.id}/enter", data={
        "channel": "proxy", "proxy_name": "李四", "proxy_document": png_upload("委托书.png"),
        **fields(voting, "agree", "agree")}, content_type="multipart/form-data")
    assert r.status_code == 302
    ballot = ballots.ballot_of(voting, h2.id)
    assert ballot.proxy_name == "李四" and ballot.proxy_document.visibility == "staff"
    page = client.get(f"/consultations/{voting.id}/ballots", headers=EN).text
    assert "P-0001" in page and "proxy: 李四" in page
    missing = client.get(f"/consultations/{voting.id}/ballots?status=missing").text
    assert f"/ballots/{h1.id}/enter" not in missing
    # The authorisation is internal: residents cannot open it.
    client.post("/logout")
    assert client.get(f"/files/{ballot.proxy_document_id}").status_code == 302


def test_paper_entry_errors_come_back_on_the_form(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    h = compound.buildings[0].households[0]
    r = client.post(f"/consultations/{voting.id}/ballots/{h.id}/enter", data={
        "channel": "proxy", "proxy_name": "", **fields(voting, "agree", "agree")}, headers=EN)
    assert r.status_code == 400 and "written authorisation" in r.text
    assert ballots.ballot_of(voting, h.id) is None


def test_live_tally_is_for_staff_and_the_frozen_one_for_everyone(client, login_as, compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "voting")
    assert client.get(f"/consultations/{c.id}/tally").status_code == 302  # sign in first
    login_as("supervisor", compound=compound)
    page = client.get(f"/consultations/{c.id}/tally", headers=EN).text
    assert "Provisional" in page and "<svg" in page
    workflow.apply(c, Action.CLOSE_VOTE, None)
    client.post("/logout")
    page = client.get(f"/consultations/{c.id}/tally", headers=EN).text
    assert "Provisional" not in page and "Passed" in page


def test_roll_download(client, login_as, voting, compound):
    login_as("supervisor", compound=compound)
    r = client.post(f"/consultations/{voting.id}/roll/export", data={"fmt": "xlsx"})
    assert r.status_code == 200 and r.data[:2] == b"PK"
    from openpyxl import load_workbook

    assert load_workbook(io.BytesIO(r.data)).active.max_row == 9


def test_a_frozen_tally_reads_in_the_readers_language_with_the_same_numbers(client, compound):
    from consult.ballots import service as ballots_service

    c = factories.make_consultation(compound, items=1, rule="civil_code_278_general")
    factories.walk_to(c, "resolution_public")
    frozen = ballots_service.frozen_tally(c)
    assert "参与表决专有部分面积" in frozen["items"][0]["conditions"][0]["text"]  # as frozen
    page = client.get(f"/consultations/{c.id}/tally", headers={"Accept-Language": "en"}).text
    assert "Civil Code art. 278, ordinary matters" in page
    assert "Participating area 492.00/492.00 m² = 100.00% ≥ 2/3 ✓" in page
    assert "参与表决" not in page
    hant = client.get(f"/consultations/{c.id}/tally", headers={"Accept-Language": "zh-TW"}).text
    assert "參與表決專有部分面積" in hant and "492.00/492.00" in hant


def test_the_chart_leaves_room_for_the_longest_answer_in_each_language(client, compound):
    import re

    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    starts = {}
    for lang, longest in (("en", "No answer"), ("zh-CN", "未表态")):
        page = client.get(f"/consultations/{c.id}/tally", headers={"Accept-Language": lang}).text
        svg = page[page.index("<svg"):page.index("</svg>")]
        assert f">{longest}</text>" in svg
        starts[lang] = {int(x) for x in re.findall(r'<rect x="(\d+)"', svg)}
        assert len(starts[lang]) == 1
    # "No answer" at 14 px is about 76 px wide: a 62 px column (as before) cut it off.
    assert starts["en"].pop() >= 80 and starts["zh-CN"].pop() >= 50
