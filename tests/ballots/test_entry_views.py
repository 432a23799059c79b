"""The committee's entry pages as a browser (and a dishonest clerk, a curious neighbour and a
bored teenager with curl) uses them."""

import io
import re

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel, BallotEntry
from consult.extensions import db
from tests import factories
from tests.access.uploads import png_upload

EN = {"Accept-Language": "en"}
FILE_HEADER = "楼栋,单元,房号,议项,表决意见,方式,编号\n"


def fields(c, *values):
    return {f"item_{item.id}": v for item, v in zip(c.items, values, strict=True)}


def answers(c, *values):
    return {item.id: v for item, v in zip(c.items, values, strict=True)}


def choices(c, h):
    return [choice for _i, choice in ballots.answers_of(c, ballots.ballot_of(c, h.id))]


def enter_url(c, h):
    return f"/consultations/{c.id}/ballots/{h.id}/enter"


@pytest.fixture
def home(compound):
    return compound.buildings[0].households[0]


@pytest.fixture
def voted_online(voting, home):
    ballots.cast(None, voting, home, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    return voting


# --- channel precedence -------------------------------------------------------------------


def test_the_form_over_an_online_ballot_shows_it_and_offers_only_a_correction(
        client, login_as, voted_online, compound, home):
    login_as("committee", compound=compound)
    page = client.get(enter_url(voted_online, home), headers=EN).text
    assert "The household already has a ballot" in page and "the household itself, online" in page
    assert "Record the correction" in page and 'name="evidence"' in page
    assert 'value="door_to_door"' not in page and 'value="not_reached"' not in page
    assert 'checked' not in page  # the clerk types what the paper says


def test_a_crafted_post_without_reason_or_evidence_changes_nothing(client, login_as,
                                                                  voted_online, compound,
                                                                  home):
    login_as("committee", compound=compound)
    before = db.session.scalar(select(func.max(AuditEvent.seq)))
    for extra in ({}, {"reason": "改了"}, {"channel": "door_to_door"},
                  {"reason": "入户未见到", "evidence": png_upload(),
                   **fields(voted_online, "not_reached", "not_reached"),
                   "channel": "door_to_door"}):
        data = {"channel": "paper", **fields(voted_online, "disagree", "disagree"), **extra}
        r = client.post(enter_url(voted_online, home), data=data, headers=EN,
                        content_type="multipart/form-data")
        assert r.status_code == 400, extra
    assert choices(voted_online, home) == ["agree", "agree"]
    assert db.session.scalar(select(func.max(AuditEvent.seq))) == before
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 0


def test_a_correction_is_seen_by_the_household_who_can_vote_again(client, login_as,
                                                                 voted_online, compound,
                                                                 home):
    clerk = factories.make_user("committee", compound=compound)
    clerk.display_name = "王干事"
    factories.sign_in(client, clerk)
    r = client.post(enter_url(voted_online, home), data={
        "channel": "paper", "serial": "P-3", "reason": "住户交回签名的书面表决票",
        "evidence": png_upload("签名表决票.png"), **fields(voted_online, "disagree", "agree")},
        content_type="multipart/form-data", headers=EN, follow_redirects=True)
    assert r.status_code == 200 and "is corrected" in r.text
    assert choices(voted_online, home) == ["disagree", "agree"]
    lead = db.session.scalars(select(BallotEntry)).one()
    assert lead.entered_by_id == clerk.id
    # The committee's list of corrections: who, when, why, the evidence, before and after.
    listing = client.get(f"/consultations/{voted_online.id}/corrections", headers=EN).text
    assert "王干事" in listing and "住户交回签名的书面表决票" in listing
    assert f"/files/{lead.evidence_id}" in listing
    assert "Agree" in listing and "Disagree" in listing
    client.post("/logout")

    login_as("resident", household=home)
    receipt = client.get(f"/consultations/{voted_online.id}/ballot", headers=EN).text
    assert "The neighbourhood committee corrected your household’s ballot" in receipt
    assert "住户交回签名的书面表决票" in receipt and "vote again online" in receipt
    assert "王干事" not in receipt  # residents see "the committee", not who
    assert f"/files/{lead.evidence_id}" not in receipt
    start = client.get("/", headers=EN).text
    assert "corrected your household’s ballot" in start and "住户交回签名的书面表决票" in start
    # The scan is for staff: the household (or a curious neighbour) cannot open it.
    assert client.get(f"/files/{lead.evidence_id}").status_code == 403
    # The household votes again online: its own latest vote counts.
    review = client.post(f"/consultations/{voted_online.id}/vote",
                         data=fields(voted_online, "agree", "agree"))
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text)
    client.post(f"/consultations/{voted_online.id}/vote/confirm",
                data={**fields(voted_online, "agree", "agree"), "submission": token.group(1)})
    assert choices(voted_online, home) == ["agree", "agree"]
    assert ballots.ballot_of(voted_online, home.id).channel == "online"
    receipt = client.get(f"/consultations/{voted_online.id}/ballot", headers=EN).text
    assert "voted again afterwards" in receipt and "vote below is your own" in receipt
    assert "corrected your household’s ballot on" not in client.get("/", headers=EN).text


def test_the_corrections_of_a_confidential_ballot_show_no_answers(client, login_as, compound,
                                                                 home):
    c = factories.make_consultation(compound, items=1, secrecy="confidential")
    factories.walk_to(c, "voting")
    clerk = factories.make_user("committee", compound=compound)
    entries.enter(clerk, c, home, entries.Paper(BallotChannel.PAPER, answers(c, "disagree")),
                  reason="更正", evidence=png_upload())
    login_as("supervisor", compound=compound)
    page = client.get(f"/consultations/{c.id}/corrections", headers=EN).text
    assert "更正" in page and "confidential" in page
    assert "Disagree" not in page and "Agree" not in page


@pytest.mark.parametrize("secrecy", ["open", "confidential"])
def test_staff_never_see_a_households_receipt_code(client, login_as, compound, home, secrecy):
    """The receipt is the household's key to the proof page, which would show anyone who holds
    it the answers of a confidential ballot: not on staff pages, not in the audit trail."""
    c = factories.make_consultation(compound, items=1, secrecy=secrecy)
    factories.walk_to(c, "voting")
    own = ballots.cast(None, c, home, answers(c, "agree"), BallotChannel.ONLINE)
    receipt = own.receipt
    clerk = factories.make_user("committee", compound=compound)
    entries.enter(clerk, c, home, entries.Paper(BallotChannel.PAPER, answers(c, "disagree")),
                  reason="更正", evidence=png_upload())
    login_as("supervisor", compound=compound)
    for page in (f"/consultations/{c.id}/ballots/{home.id}", f"/consultations/{c.id}/corrections",
                 f"/consultations/{c.id}/ballots"):
        assert receipt not in client.get(page, headers=EN).text, page
    current = ballots.ballot_of(c, home.id).receipt
    assert current not in client.get(f"/consultations/{c.id}/ballots/{home.id}").text
    payloads = db.session.scalars(select(AuditEvent.payload)).all()
    assert not any(receipt in p or current in p for p in payloads)


# --- double entry -------------------------------------------------------------------------


@pytest.fixture
def doubled(voting):
    voting.double_entry = True
    db.session.flush()
    return voting


def without_tokens(page: str) -> str:
    return re.sub(r'(name="csrf_token"[^>]*value=")[^"]*', r"\1", page)


def test_one_clerk_with_two_tabs_cannot_make_both_entries(client, login_as, doubled,
                                                          compound, home):
    login_as("committee", compound=compound)
    # Both tabs show the same blank form; only the CSRF token's timestamp may differ.
    tab_one, tab_two = (without_tokens(client.get(enter_url(doubled, home)).text)
                        for _ in range(2))
    assert tab_one == tab_two
    data = {"channel": "paper", **fields(doubled, "agree", "agree")}
    assert client.post(enter_url(doubled, home), data=data).status_code == 302
    r = client.post(enter_url(doubled, home), data=data, headers=EN)
    assert r.status_code == 403 and "another member" in r.text
    assert ballots.ballot_of(doubled, home.id) is None
    assert "You made the first entry" in client.get(enter_url(doubled, home), headers=EN).text


def test_the_second_member_enters_blind_and_matching_entries_count(client, login_as, doubled,
                                                                   compound, home):
    first = factories.make_user("committee", compound=compound)
    first.display_name = "李干事"
    entries.enter(first, doubled, home, entries.Paper(
        BallotChannel.PAPER, answers(doubled, "disagree", "abstain"), serial="P-42"))
    login_as("committee", compound=compound)
    page = client.get(enter_url(doubled, home), headers=EN).text
    assert "Second entry of a paper ballot" in page and "李干事" in page
    assert "checked" not in page and "P-42" not in page
    household_page = client.get(f"/consultations/{doubled.id}/ballots/{home.id}",
                                headers=EN).text
    assert "hidden until the second entry" in household_page and "P-42" not in household_page
    assert "Abstain" not in household_page
    r = client.post(enter_url(doubled, home), data={
        "channel": "paper", "serial": "P-42", **fields(doubled, "disagree", "abstain")},
        headers=EN, follow_redirects=True)
    assert "recorded (receipt" in r.text
    assert choices(doubled, home) == ["disagree", "abstain"]


def test_differing_entries_wait_for_a_third_member(client, login_as, doubled, compound, home):
    a, b = (factories.make_user("committee", compound=compound) for _ in range(2))
    lead = entries.enter(a, doubled, home, entries.Paper(BallotChannel.PAPER,
                                                         answers(doubled, "agree", "agree")))
    factories.sign_in(client, b)
    r = client.post(enter_url(doubled, home), data={
        "channel": "paper", **fields(doubled, "agree", "disagree")}, headers=EN,
        follow_redirects=True)
    assert "differ" in r.text and ballots.ballot_of(doubled, home.id) is None
    decide = f"/consultations/{doubled.id}/entries/{lead.id}/decide"
    # An enterer is told, and a crafted decision of theirs is refused.
    assert "You entered this paper ballot" in client.get(decide, headers=EN).text
    assert client.post(decide, data={"pick": str(lead.id), "channel": "paper"}).status_code == (
        403)
    waiting = client.get(f"/consultations/{doubled.id}/entries", headers=EN).text
    assert "entries differ" in waiting and decide in waiting
    login_as("committee", compound=compound)
    page = client.get(decide, headers=EN).text
    assert "Neither: the paper ballot says" in page
    r = client.post(decide, data={"pick": "paper", "channel": "paper", "note": "看原件",
                                  **fields(doubled, "abstain", "agree")}, headers=EN,
                    follow_redirects=True)
    assert r.status_code == 200 and "Decided" in r.text
    assert choices(doubled, home) == ["abstain", "agree"]


def test_the_tally_and_the_close_say_how_many_papers_wait(client, login_as, doubled, compound,
                                                         home):
    clerk = factories.make_user("committee", compound=compound)
    entries.enter(clerk, doubled, home, entries.Paper(BallotChannel.PAPER,
                                                      answers(doubled, "agree", "agree")))
    for h in (hh for b in compound.buildings for hh in b.households):
        if h is not home:
            ballots.cast(None, doubled, h, answers(doubled, "agree", "agree"),
                         BallotChannel.ONLINE)
    login_as("committee", compound=compound)
    tally = client.get(f"/consultations/{doubled.id}/tally", headers=EN).text
    assert "1 paper ballot awaits its second entry" in tally
    assert f"/consultations/{doubled.id}/entries" in tally
    r = client.post(f"/consultations/{doubled.id}/stage",
                    data={"action": "close_vote", "confirmed": "1"},
                    headers=EN, follow_redirects=True)
    assert "1 paper ballot awaits its second entry or a decision." in r.text
    assert f"/consultations/{doubled.id}/entries" in r.text
    assert doubled.vote_closed_at is None


# --- written authorisations ---------------------------------------------------------------


def test_a_proxy_ballot_counts_once_its_required_authorisation_is_attached(client, login_as,
                                                                           voting, compound,
                                                                           home):
    voting.proxy_document_required = True
    login_as("committee", compound=compound)
    r = client.post(enter_url(voting, home), data={
        "channel": "proxy", "proxy_name": "李四", **fields(voting, "agree", "agree")},
        headers=EN, follow_redirects=True)
    assert "counts once the written authorisation" in r.text
    assert ballots.ballot_of(voting, home.id) is None
    page = client.get(f"/consultations/{voting.id}/ballots/{home.id}", headers=EN).text
    assert "Attach the written authorisation" in page
    r = client.post(f"/consultations/{voting.id}/ballots/{home.id}/authorisation",
                    data={"document": png_upload("委托书.png")},
                    content_type="multipart/form-data", headers=EN, follow_redirects=True)
    assert "the proxy ballot counts now" in r.text
    ballot = ballots.ballot_of(voting, home.id)
    assert ballot.proxy_document_id is not None
    listing = client.get(f"/consultations/{voting.id}/ballots", headers=EN).text
    assert f"/files/{ballot.proxy_document_id}" in listing
    assert f"/files/{ballot.proxy_document_id}" in client.get(
        f"/consultations/{voting.id}/ballots/{home.id}").text


# --- the web import -----------------------------------------------------------------------


def test_the_web_import_writes_nothing_until_it_is_confirmed(client, login_as, voting,
                                                            compound):
    login_as("committee", compound=compound)
    file = (FILE_HEADER + "1号楼,1,101,1,同意,书面,P-1\n1号楼,1,101,2,反对,书面,P-1\n"
            "1号楼,1,102,1,同意,入户,\n1号楼,1,102,2,同意,入户,\n").encode()
    before = db.session.scalar(select(func.max(AuditEvent.seq)))
    preview = client.post(f"/consultations/{voting.id}/ballots/import",
                          data={"file": (io.BytesIO(file), "ballots.csv")},
                          content_type="multipart/form-data", headers=EN)
    assert preview.status_code == 200 and "Nothing has been recorded yet" in preview.text
    assert "P-1" in preview.text and "Enter these ballots" in preview.text
    assert db.session.scalar(select(func.count(Ballot.id))) == 0
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 0
    assert db.session.scalar(select(func.max(AuditEvent.seq))) == before
    sha256 = re.search(r'name="sha256" type="hidden" value="([0-9a-f]{64})"',
                       preview.text).group(1)
    # Another member cannot confirm someone else's preview.
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{voting.id}/ballots/import/confirm",
                    data={"sha256": sha256, "filename": "ballots.csv"}, headers=EN,
                    follow_redirects=True)
    assert "no longer waiting" in r.text
    assert db.session.scalar(select(func.count(Ballot.id))) == 0


def test_the_confirmed_import_is_entered_and_a_bad_file_is_shown_with_its_errors(
        client, login_as, voting, compound):

    login_as("committee", compound=compound)
    bad = (FILE_HEADER + "1号楼,1,101,1,同意,书面,P-1\n9号楼,1,101,1,同意,书面,\n").encode()
    preview = client.post(f"/consultations/{voting.id}/ballots/import",
                          data={"file": (io.BytesIO(bad), "bad.csv")},
                          content_type="multipart/form-data", headers=EN)
    assert preview.status_code == 400 and "cannot be entered" in preview.text
    assert "Enter these ballots" not in preview.text and "no answer for item(s) 2" in preview.text
    good = (FILE_HEADER + "1号楼,1,101,1,同意,书面,P-1\n1号楼,1,101,2,反对,书面,P-1\n").encode()
    preview = client.post(f"/consultations/{voting.id}/ballots/import",
                          data={"file": (io.BytesIO(good), "good.csv")},
                          content_type="multipart/form-data", headers=EN)
    sha256 = re.search(r'name="sha256" type="hidden" value="([0-9a-f]{64})"',
                       preview.text).group(1)
    r = client.post(f"/consultations/{voting.id}/ballots/import/confirm",
                    data={"sha256": sha256, "filename": "good.csv"}, headers=EN,
                    follow_redirects=True)
    assert "File entered: 1 households" in r.text
    assert choices(voting, compound.buildings[0].households[0]) == ["agree", "disagree"]
    # The same preview cannot be entered twice.
    again = client.post(f"/consultations/{voting.id}/ballots/import/confirm",
                        data={"sha256": sha256, "filename": "good.csv"}, headers=EN,
                        follow_redirects=True)
    assert "no longer waiting" in again.text


def test_a_second_entry_by_file_is_not_told_whether_it_matches(client, login_as, doubled,
                                                               compound, home):

    first = factories.make_user("committee", compound=compound)
    entries.enter(first, doubled, home, entries.Paper(BallotChannel.PAPER,
                                                      answers(doubled, "agree", "agree")))
    login_as("committee", compound=compound)
    for choice in ("同意", "反对"):
        file = (FILE_HEADER + f"1号楼,1,101,1,{choice},书面,\n1号楼,1,101,2,同意,书面,\n"
                ).encode()
        preview = client.post(f"/consultations/{doubled.id}/ballots/import",
                              data={"file": (io.BytesIO(file), "b.csv")},
                              content_type="multipart/form-data", headers=EN).text
        assert "second entry" in preview
        assert "differ" not in preview and "agree with" not in preview


# --- who may ------------------------------------------------------------------------------


def test_outsiders_cannot_enter_decide_or_read_entries(client, login_as, doubled, compound,
                                                       home):
    a, b = (factories.make_user("committee", compound=compound) for _ in range(2))
    lead = entries.enter(a, doubled, home, entries.Paper(BallotChannel.PAPER,
                                                         answers(doubled, "agree", "agree")))
    entries.enter(b, doubled, home, entries.Paper(BallotChannel.PAPER,
                                                  answers(doubled, "agree", "disagree")))
    urls = {"GET": [enter_url(doubled, home), f"/consultations/{doubled.id}/entries",
                    f"/consultations/{doubled.id}/corrections",
                    f"/consultations/{doubled.id}/ballots/{home.id}",
                    f"/consultations/{doubled.id}/entries/{lead.id}/decide",
                    f"/consultations/{doubled.id}/ballots/import"],
            "POST": [f"/consultations/{doubled.id}/entries/{lead.id}/decide",
                     enter_url(doubled, home),
                     f"/consultations/{doubled.id}/ballots/{home.id}/authorisation"]}
    decision = {"pick": str(lead.id), "channel": "paper", **fields(doubled, "agree", "agree")}
    # A bored teenager with curl is sent to sign in.
    for method, addresses in urls.items():
        for url in addresses:
            r = client.open(url, method=method, data=decision if method == "POST" else None)
            assert r.status_code == 302 and "/login" in r.headers["Location"], url
    # A committee member of another compound, and a curious neighbour, are refused.
    for sign_in in (lambda: login_as("committee", compound=factories.make_compound("别处")),
                    lambda: login_as("resident", household=compound.buildings[1].households[0])):
        sign_in()
        for method, addresses in urls.items():
            for url in addresses:
                r = client.open(url, method=method,
                                data=decision if method == "POST" else None)
                assert r.status_code == 403, (method, url)
        client.post("/logout")
    assert ballots.ballot_of(doubled, home.id) is None


def test_a_households_pages_name_it_in_the_readers_language(client, login_as, voted_online,
                                                            compound, home):
    login_as("committee", compound=compound)
    for url in (enter_url(voted_online, home),
                f"/consultations/{voted_online.id}/ballots/{home.id}"):
        page = client.get(url, headers={"Accept-Language": "zh-TW"}).text
        assert f"{home.building.name} 1單元 {home.room}室" in page, url
        page = client.get(url, headers=EN).text
        assert f"{home.building.name}, unit 1, room {home.room}" in page, url
