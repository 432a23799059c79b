"""Door-to-door follow-up (再入户): the visit list for each filter, the split among teams,
visits recorded through the ballot entry rules, the progress numbers and the printed sheets."""

import io
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots import visits
from consult.ballots.models import BallotChannel, Visit
from consult.consultations.states import Action
from consult.core.errors import Conflict, ValidationFailed
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import visit_sheets, workflow
from tests import factories


def open_vote(compound, rule="household_majority"):
    c = factories.make_consultation(compound, items=2, rule=rule)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


def cast(c, household, *values, channel=BallotChannel.ONLINE):
    return ballots.cast(None, c, household, dict(zip([i.id for i in c.items], values,
                                                     strict=True)), channel)


def answers(c, *values):
    return dict(zip([i.id for i in c.items], values, strict=True))


@pytest.fixture
def estate():
    """Buildings of 5, 3, 2 and 2 households (12 in all)."""
    compound = factories.make_compound("幸福里")
    for name, size in (("1号楼", 5), ("2号楼", 3), ("3号楼", 2), ("4号楼", 2)):
        building = factories.make_building(compound, name)
        for n in range(size):
            factories.make_household(building, room=f"{n + 1}01", area_dm2=7000 + 100 * n)
    db.session.flush()
    return compound


def hh(compound, b, n):
    return compound.buildings[b].households[n]


@pytest.fixture
def survey(estate):
    """A survey: 1号楼 #0 agreed online, #1 disagreed, #2 undecided at the door, #3 not
    reached at the door; 2号楼 #0 disagreed on one item only; everyone else has no answer."""
    c = open_vote(estate, rule="survey")
    cast(c, hh(estate, 0, 0), "agree", "agree")
    cast(c, hh(estate, 0, 1), "disagree", "disagree")
    cast(c, hh(estate, 0, 2), "undecided", "agree", channel=BallotChannel.DOOR_TO_DOOR)
    cast(c, hh(estate, 0, 3), "not_reached", "not_reached", channel=BallotChannel.DOOR_TO_DOOR)
    cast(c, hh(estate, 1, 0), "agree", "disagree")
    return c


def labels(found):
    return [(c.building, c.room, c.reasons) for c in found]


# --- the list -----------------------------------------------------------------------------


def test_not_voted_lists_every_household_without_a_ballot(survey):
    found = visits.candidates(survey, [visits.NOT_VOTED])
    assert labels(found) == [("1号楼", "501", ["not_voted"]), ("2号楼", "201", ["not_voted"]),
                             ("2号楼", "301", ["not_voted"]), ("3号楼", "101", ["not_voted"]),
                             ("3号楼", "201", ["not_voted"]), ("4号楼", "101", ["not_voted"]),
                             ("4号楼", "201", ["not_voted"])]


def test_each_other_filter(survey):
    assert labels(visits.candidates(survey, [visits.UNDECIDED])) == [
        ("1号楼", "301", ["undecided"])]
    assert labels(visits.candidates(survey, [visits.NOT_REACHED])) == [
        ("1号楼", "401", ["not_reached"])]
    # Disagreeing on any item puts a household on the list.
    assert labels(visits.candidates(survey, [visits.DISAGREED])) == [
        ("1号楼", "201", ["disagreed"]), ("2号楼", "101", ["disagreed"])]


def test_filters_combine_and_building_narrows(survey):
    found = visits.candidates(survey, list(visits.REASONS), building="1号楼")
    assert labels(found) == [("1号楼", "201", ["disagreed"]), ("1号楼", "301", ["undecided"]),
                             ("1号楼", "401", ["not_reached"]), ("1号楼", "501", ["not_voted"])]


def test_a_vote_offers_no_disagreed_filter(estate):
    c = open_vote(estate)
    assert visits.reasons_offered(c) == ("not_voted", "undecided", "not_reached")
    with pytest.raises(ValidationFailed) as exc:
        visits.plan(c, ["disagreed"], None, "一组", "count")
    assert "reasons" in exc.value.errors


def test_bad_teams_are_refused_at_their_field(survey):
    with pytest.raises(ValidationFailed) as exc:
        visits.plan(survey, ["not_voted"], None, "一组: 甲\n一组: 乙\n: 丙", "count")
    assert len(exc.value.errors["teams"]) == 2


# --- the split ----------------------------------------------------------------------------


def test_split_by_count_is_even(estate):
    c = open_vote(estate)  # nobody voted: 12 households
    planned = visits.plan(c, ["not_voted"], None, "一组: 张三, 李四\n二组: 王五\n三组：赵六",
                          "count")
    assert [len(t.households) for t in planned.teams] == [4, 4, 4]
    assert planned.teams[2].name == "三组" and planned.teams[0].members == "张三, 李四"
    planned = visits.plan(c, ["not_voted"], None, "一组\n二组\n三组\n四组\n五组", "count")
    assert [len(t.households) for t in planned.teams] == [3, 3, 2, 2, 2]


def test_split_by_building_keeps_buildings_whole(estate):
    c = open_vote(estate)
    planned = visits.plan(c, ["not_voted"], None, "一组\n二组", "building")
    # 5 → 一组, 3 → 二组, 2 → 二组, 2 → 一组: 7 and 5, no building cut.
    assert [t.buildings for t in planned.teams] == [["1号楼", "4号楼"], ["2号楼", "3号楼"]]
    assert [len(t.households) for t in planned.teams] == [7, 5]


def test_saving_keeps_the_split_shown_and_is_audited(estate):
    c = open_vote(estate)
    planned = visits.plan(c, ["not_voted"], None, "一组\n二组", "building")
    member = factories.make_user("committee", compound=estate)
    visit_list = visits.create_list(member, c, planned)
    saved = [[r.roll.building_name for r in visits.rows(visit_list, team)]
             for team in visit_list.teams]
    assert saved == [["1号楼"] * 5 + ["4号楼"] * 2, ["2号楼"] * 3 + ["3号楼"] * 2]
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "visits.list_created")).one()
    assert event.actor_id == member.id and '"households":12' in event.payload


def test_no_list_once_the_vote_is_closed(estate):
    c = factories.make_consultation(estate, items=1)
    factories.walk_to(c, "discussing")
    with pytest.raises(Conflict):
        visits.plan(c, ["not_voted"], None, "一组", "count")


# --- recording ----------------------------------------------------------------------------


@pytest.fixture
def listed(estate):
    c = open_vote(estate)
    cast(c, hh(estate, 0, 1), "not_reached", "not_reached", channel=BallotChannel.DOOR_TO_DOOR)
    planned = visits.plan(c, ["not_voted", "not_reached"], "1号楼", "一组\n二组", "count")
    return c, visits.create_list(None, c, planned)


def visit_of(visit_list, household):
    return db.session.scalars(select(Visit).where(Visit.visit_list_id == visit_list.id,
                                                  Visit.household_id == household.id)).one()


def test_an_answer_taken_becomes_a_door_to_door_ballot(listed, estate):
    c, visit_list = listed
    member = factories.make_user("committee", compound=estate)
    visit = visit_of(visit_list, hh(estate, 0, 0))
    visits.record_visit(member, visit, "answered", answers(c, "agree", "disagree"), "老人在家")
    ballot = ballots.ballot_of(c, hh(estate, 0, 0).id)
    assert ballot.channel == "door_to_door" and ballot.entered_by_id == member.id
    assert [ch for _i, ch in ballots.answers_of(c, ballot)] == ["agree", "disagree"]
    assert visit.outcome == "answered" and visit.note == "老人在家" and visit.entry_id
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "visits.recorded")).one()
    assert '"outcome":"answered"' in event.payload and event.actor_id == member.id


def test_an_answer_replaces_a_not_reached_note(listed, estate):
    c, visit_list = listed
    visit = visit_of(visit_list, hh(estate, 0, 1))
    assert visit.reasons == "not_reached"
    visits.record_visit(None, visit, "answered", answers(c, "disagree", "abstain"))
    assert [ch for _i, ch in ballots.answers_of(c, ballots.ballot_of(c, hh(estate, 0, 1).id))
            ] == ["disagree", "abstain"]


def test_a_visit_never_replaces_the_households_own_online_ballot(listed, estate):
    c, visit_list = listed
    household = hh(estate, 0, 2)
    visit = visit_of(visit_list, household)
    own = cast(c, household, "agree", "agree")  # voted online after the list was made
    with pytest.raises(ValidationFailed) as exc:
        visits.record_visit(None, visit, "answered", answers(c, "disagree", "disagree"))
    assert "channel" in exc.value.errors
    db.session.refresh(own)
    assert own.channel == "online" and [c_.choice for c_ in own.choices] == ["agree", "agree"]
    assert visit.outcome is None


def test_not_reached_at_the_door_never_counts_as_an_answer(listed, estate):
    c, visit_list = listed
    visit = visit_of(visit_list, hh(estate, 0, 3))
    visits.record_visit(None, visit, "not_home", {}, "")
    assert ballots.ballot_of(c, hh(estate, 0, 3).id) is None and visit.outcome == "not_home"


def test_bad_outcome_and_long_note_are_refused(listed, estate):
    _c, visit_list = listed
    visit = visit_of(visit_list, hh(estate, 0, 3))
    with pytest.raises(ValidationFailed) as exc:
        visits.record_visit(None, visit, "gone", {})
    assert "outcome" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        visits.record_visit(None, visit, "refused", {}, "很" * 501)
    assert "note" in exc.value.errors and visit.outcome is None


def test_progress_by_team_and_outcome(listed, estate):
    c, visit_list = listed
    # 1号楼 has 5 households; all are listed (4 without a ballot, 1 not reached): 3 and 2.
    first, second = visit_list.teams
    rows = visits.rows(visit_list)
    assert [r.visit.team_id for r in rows] == [first.id] * 3 + [second.id] * 2
    visits.record_visit(None, rows[0].visit, "answered", answers(c, "agree", "agree"))
    visits.record_visit(None, rows[1].visit, "refused", {})
    visits.record_visit(None, rows[3].visit, "moved", {})
    progress = visits.progress(visit_list)
    assert [(p.visited, p.assigned) for p in progress] == [(2, 3), (1, 2)]
    assert progress[0].by_outcome == {"answered": 1, "not_home": 0, "refused": 1, "moved": 0}
    assert progress[1].by_outcome["moved"] == 1
    total = visits.totals(progress)
    assert (total.visited, total.assigned, total.remaining) == (3, 5, 2)


# --- the printed sheets -------------------------------------------------------------------


def test_sheets_read_back(app, listed, estate, monkeypatch):
    _c, visit_list = listed
    targets = []
    real = visit_sheets.pdf.qr_svg

    def spy(data, scale=3):
        targets.append(data)
        return real(data, scale)

    monkeypatch.setattr(visit_sheets.pdf, "qr_svg", spy)
    with app.test_request_context():
        data = visit_sheets.sheets_pdf(visit_list)
    reader = PdfReader(io.BytesIO(data))
    pages = ["".join(page.extract_text().split()) for page in reader.pages]
    assert len(pages) == 2  # a page per team
    assert "入户走访表：一组" in pages[0] and "入户走访表：二组" in pages[1]
    # 1号楼 in address order, 3 and 2: each address, its area, why and what is needed.
    assert "11号楼1单元101室70.00m²未表决逐项取得该户意见" in pages[0]
    assert "21号楼1单元201室71.00m²未见到见到该户并取得意见" in pages[0]
    assert "1号楼1单元401室" in pages[1] and "1号楼1单元101室" not in pages[1]
    assert "3户·213.00m²" in pages[0] and "2户·147.00m²" in pages[1]
    # Every QR opens its household's visit page.
    rows = visits.rows(visit_list)
    assert [t.rsplit("/", 1)[-1] for t in targets] == [str(r.visit.id) for r in rows]
    adapter = app.url_map.bind("localhost")
    endpoint, args = adapter.match(urlsplit(targets[0]).path)
    assert endpoint == "ballots.visit" and args["visit_id"] == rows[0].visit.id
    with app.test_request_context():
        one = PdfReader(io.BytesIO(visit_sheets.sheets_pdf(visit_list, visit_list.teams[1])))
    text = "".join("".join(p.extract_text().split()) for p in one.pages)
    assert "入户走访表：二组" in text and "一组" not in text and "1号楼1单元501室" in text


def test_an_answer_under_double_entry_waits_for_its_second_entry(listed, estate):
    c, visit_list = listed
    c.double_entry = True
    first, second = (factories.make_user("committee", compound=estate) for _ in range(2))
    visit = visit_of(visit_list, hh(estate, 0, 0))
    visits.record_visit(first, visit, "answered", answers(c, "agree", "agree"))
    assert ballots.ballot_of(c, hh(estate, 0, 0).id) is None
    assert visits.entry_states(visit_list) == {visit.entry_id: "awaiting_second"}
    # The second member records the same answer from the same sheet: it counts.
    visits.record_visit(second, visit, "answered", answers(c, "agree", "agree"))
    assert ballots.ballot_of(c, hh(estate, 0, 0).id).channel == "door_to_door"
    assert visits.entry_states(visit_list) == {visit.entry_id: "counted"}
