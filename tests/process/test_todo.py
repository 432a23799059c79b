"""The committee's to-do list on its home page: each kind of work with its number, gone once
done, only in the compounds the member manages, most urgent first."""

from datetime import timedelta

import pytest

from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation import service as implementation
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import todo, workflow
from tests import factories

EN = {"Accept-Language": "en"}
HEADING = "What waits for the committee"
NOTHING = "Nothing waits for the committee right now."


def home(client):
    return client.get("/", headers=EN).text


def open_vote(compound, title, deadline):
    c = factories.make_consultation(compound, items=1, title=title)
    factories.walk_to(c, "discussing")
    c.vote_deadline = deadline
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


def cast(c, household, channel=BallotChannel.ONLINE):
    ballots.cast(None, c, household, {item.id: "agree" for item in c.items}, channel)


def households(compound):
    return [h for b in compound.buildings for h in b.households]


def test_objections_awaiting_an_answer(client, login_as, compound):
    c = factories.make_consultation(compound, items=1, title="加装电梯")
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    first, second = households(compound)[:2]
    objections = [notices.file_objection(None, notice, first, "费用太高"),
                  notices.file_objection(None, notice, second, "施工噪音")]
    login_as("committee", compound=compound)
    page = home(client)
    assert "2 objections awaiting an answer" in page
    assert f'href="/notices/{notice.id}#objections"' in page
    notices.answer_objection(None, objections[0], "已核实。")
    db.session.commit()
    assert "1 objection awaiting an answer" in home(client)
    notices.answer_objection(None, objections[1], "已安排。")
    db.session.commit()
    page = home(client)
    assert "awaiting an answer" not in page and NOTHING in page


def test_a_vote_closing_within_48_hours_with_its_turnout(client, login_as, compound):
    soon = open_vote(compound, "屋面防水", utcnow() + timedelta(hours=19, minutes=30))
    later = open_vote(compound, "路面硬化", utcnow() + timedelta(days=3))
    homes = households(compound)
    for household in homes[:3]:
        cast(soon, household)
    login_as("committee", compound=compound)
    page = home(client)
    assert f"The vote closes in 20 h · 3 of {len(homes)} households voted" in page
    assert f'href="/consultations/{soon.id}/ballots?status=missing"' in page
    assert later.title not in page.split(HEADING)[1].split("Signed in as")[0]
    # Every household voted: the vote is closed and counted, nothing is left to do.
    for household in homes[3:]:
        cast(soon, household)
    workflow.apply(soon, Action.CLOSE_VOTE, None)
    db.session.commit()
    assert "The vote closes in" not in home(client)


def test_paper_ballots_waiting_for_their_second_entry(client, login_as, compound):
    c = open_vote(compound, "楼道照明", utcnow() + timedelta(days=5))
    c.double_entry = True
    db.session.flush()
    clerk, checker = (factories.make_user("committee", compound=compound) for _ in range(2))
    homes = households(compound)
    for household in homes[:2]:
        entries.enter(clerk, c, household, entries.Paper(
            BallotChannel.PAPER, {item.id: "agree" for item in c.items}))
    login_as("committee", compound=compound)
    page = home(client)
    assert "2 paper ballots await their second entry" in page
    assert f'href="/consultations/{c.id}/entries"' in page
    for household in homes[:2]:
        entries.enter(checker, c, household, entries.Paper(
            BallotChannel.PAPER, {item.id: "agree" for item in c.items}))
    db.session.commit()
    assert "await their second entry" not in home(client)


def test_a_stage_whose_deadline_passed_names_the_next_step(client, login_as, compound):
    c = factories.make_consultation(compound, title="绿化补植", stage="soliciting")
    c.solicitation_deadline = utcnow() - timedelta(hours=2)
    resolution = factories.make_consultation(compound, items=1, title="停车位划线")
    factories.walk_to(resolution, "resolution_public")
    notice = notices.current_notice(resolution, NoticeKind.RESOLUTION)
    notice.period_ends_at = utcnow() - timedelta(days=1)
    db.session.flush()
    login_as("committee", compound=compound)
    page = home(client)
    assert page.count(">deadline passed<") == 2
    assert "Next step: Stop collecting opinions and draft the proposal" in page
    assert "Next step: Start the works" in page
    assert f'href="/consultations/{c.id}#next-steps"' in page
    workflow.apply(c, Action.START_PROPOSING, None)
    workflow.apply(resolution, Action.START_IMPLEMENTATION, None)
    db.session.commit()
    page = home(client)
    assert "Next step:" not in page
    # The works that started are now on the list, waiting for their completion report.
    assert "The works have no completion report yet" in page


def test_works_without_a_completion_report(client, login_as, compound):
    c = factories.make_consultation(compound, items=1, title="外墙保温")
    now = factories.walk_to(c, "implementing")
    implementation.add_progress(None, c, implementation.progress_data(
        item_id=None, percent=60, spend="", note="", is_final=False), now=now)
    login_as("committee", compound=compound)
    page = home(client)
    assert "The works have no completion report yet · 60 % done" in page
    assert f'href="/consultations/{c.id}/works"' in page
    implementation.add_progress(None, c, implementation.progress_data(
        item_id=None, percent=100, spend="", note="", is_final=True), now=now)
    db.session.commit()
    assert "no completion report" not in home(client)


def test_most_urgent_first(client, login_as, compound):
    works = factories.make_consultation(compound, items=1, title="AAA works")
    factories.walk_to(works, "implementing")
    vote = open_vote(compound, "BBB vote", utcnow() + timedelta(hours=30))
    overdue = factories.make_consultation(compound, title="CCC overdue", stage="soliciting")
    overdue.solicitation_deadline = utcnow() - timedelta(days=1)
    db.session.flush()
    member = login_as("committee", compound=compound)
    assert [t.consultation.id for t in todo.todo_for(member)] == [overdue.id, vote.id, works.id]
    page = home(client)
    assert page.index("CCC overdue") < page.index("BBB vote") < page.index("AAA works")


def test_only_in_the_compounds_the_member_manages(client, login_as, compound):
    c = factories.make_consultation(compound, title="本小区议题", stage="soliciting")
    c.solicitation_deadline = utcnow() - timedelta(hours=1)
    db.session.flush()
    login_as("committee", compound=factories.make_compound())
    page = home(client)
    assert HEADING in page and NOTHING in page
    assert "deadline passed" not in page


@pytest.mark.parametrize("role", ["resident", "supervisor"])
def test_no_to_do_list_for_those_who_do_not_run_consultations(client, login_as, compound,
                                                               role):
    c = factories.make_consultation(compound, title="本小区议题", stage="soliciting")
    c.solicitation_deadline = utcnow() - timedelta(hours=1)
    db.session.flush()
    if role == "resident":
        user = login_as(role, household=households(compound)[0])
    else:
        user = login_as(role, compound=compound)
    assert todo.todo_for(user) == []
    page = home(client)
    assert HEADING not in page and "deadline passed" not in page


def test_an_administrator_sees_every_compound(client, login_as, compound):
    c = factories.make_consultation(compound, title="本小区议题", stage="soliciting")
    c.solicitation_deadline = utcnow() - timedelta(hours=1)
    db.session.flush()
    login_as("admin")
    assert "Next step: Stop collecting opinions" in home(client)
