"""Entering a pile of paper ballots at speed: save and go on to the next household without a
ballot, find a household by its room, a form for one channel at a time."""

import re

import pytest
from sqlalchemy import func, select

from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel, BallotEntry
from consult.extensions import db
from tests import factories
from tests.ballots.test_entry_views import EN, answers, enter_url, fields


def household(compound, building: int, room: str):
    return next(h for h in compound.buildings[building].households if h.room == room)


def list_url(c, **args):
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/consultations/{c.id}/ballots?{query}"


def entry_target(c, h, channel="paper"):
    return f"/consultations/{c.id}/ballots/{h.id}/enter?channel={channel}"


# --- save and go on to the next household ---------------------------------------------------


def test_save_and_next_skips_households_with_a_ballot_or_the_members_own_entry(
        client, login_as, voting, compound):
    voting.double_entry = True
    db.session.flush()
    clerk = login_as("committee", compound=compound)
    other = factories.make_user("committee", compound=compound)
    # 1号楼: 101 (entered now), 102 (this clerk's first entry waits for a second),
    # 201 (voted online), 202 (another member's first entry: this clerk can enter it again).
    entries.enter(clerk, voting, household(compound, 0, "102"), entries.Paper(
        BallotChannel.PAPER, answers(voting, "agree", "agree")))
    ballots.cast(None, voting, household(compound, 0, "201"), answers(voting, "agree", "agree"),
                 BallotChannel.ONLINE)
    entries.enter(other, voting, household(compound, 0, "202"), entries.Paper(
        BallotChannel.PAPER, answers(voting, "disagree", "agree")))
    db.session.commit()
    first = household(compound, 0, "101")
    r = client.post(enter_url(voting, first), data={
        "channel": "door_to_door", "then": "next", **fields(voting, "agree", "not_reached")})
    assert r.status_code == 302
    assert r.headers["Location"] == entry_target(voting, household(compound, 0, "202"),
                                                 "door_to_door")
    # The next one's form is for the channel of the last, and it is a second entry there.
    page = client.get(r.headers["Location"], headers=EN).text
    assert "Second entry of a paper ballot" in page and 'value="not_reached"' in page
    # From the last household of a building the roll goes on to the next building.
    r = client.post(enter_url(voting, household(compound, 0, "202")), data={
        "channel": "paper", "then": "next", **fields(voting, "disagree", "agree")})
    assert r.headers["Location"] == entry_target(voting, household(compound, 1, "101"))


def test_save_alone_goes_back_to_the_list_of_the_building(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    r = client.post(enter_url(voting, household(compound, 1, "101")), data={
        "channel": "paper", **fields(voting, "agree", "agree")})
    assert r.status_code == 302 and "/enter" not in r.headers["Location"]


def test_save_and_next_at_the_end_of_the_roll_goes_back_to_the_list(client, login_as, voting,
                                                                   compound):
    login_as("committee", compound=compound)
    # Everyone after 2号楼 101 has voted; 1号楼 (before it on the roll) has not.
    for room in ("102", "201", "202"):
        ballots.cast(None, voting, household(compound, 1, room), answers(voting, "agree",
                                                                         "abstain"),
                     BallotChannel.ONLINE)
    db.session.commit()
    r = client.post(enter_url(voting, household(compound, 1, "101")), data={
        "channel": "paper", "then": "next", **fields(voting, "agree", "agree")}, headers=EN)
    assert r.status_code == 302
    assert r.headers["Location"] == list_url(voting, status="missing")
    page = client.get(r.headers["Location"], headers=EN).text
    assert "recorded (receipt" in page
    assert "on the roll is still without a ballot" in page
    assert ballots.ballot_of(voting, household(compound, 1, "101").id).channel == "paper"


def test_next_to_enter_passes_papers_that_wait_for_a_decision(voting, compound):
    a, b, c = (factories.make_user("committee", compound=compound) for _ in range(3))
    voting.double_entry = True
    db.session.flush()
    differing = household(compound, 0, "102")
    entries.enter(a, voting, differing, entries.Paper(BallotChannel.PAPER,
                                                      answers(voting, "agree", "agree")))
    entries.enter(b, voting, differing, entries.Paper(BallotChannel.PAPER,
                                                      answers(voting, "disagree", "agree")))
    start = ballots.roll_entry_for(voting, household(compound, 0, "101").id)
    assert start is not None
    following = entries.next_to_enter(voting, start, c)
    assert following is not None and following.room == "201"


# --- finding a household by its room -----------------------------------------------------------


def rooms_listed(page: str) -> list[str]:
    return re.findall(r"</a></td><td>[^<]*</td><td>([^<]+)</td>", page)


def test_room_search_lists_the_rooms_that_start_so(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    r = client.get(list_url(voting, room="20"))
    assert r.status_code == 200 and rooms_listed(r.text) == ["201", "202", "201", "202"]
    # "1-201": unit 1 of both buildings, so two households; the list shows both.
    r = client.get(list_url(voting, room="1-201"))
    assert r.status_code == 200 and rooms_listed(r.text) == ["201", "201"]
    r = client.get(list_url(voting, room="999"), headers=EN)
    assert rooms_listed(r.text) == [] and "No household on the roll matches room" in r.text
    r = client.get(list_url(voting, room="1-2-3-4"))
    assert rooms_listed(r.text) == []


@pytest.mark.parametrize(("query", "building", "room"), [
    ("2-201", 1, "201"),         # building 2 (2号楼)
    ("1-1-202", 0, "202"),       # building, unit, room
    ("1号楼-102", 0, "102"),
    ("２－１０２", 1, "102"),    # full-width, as a Chinese keyboard may type it
])
def test_one_exact_match_opens_its_entry_form(client, login_as, voting, compound, query,
                                              building, room):
    login_as("committee", compound=compound)
    r = client.get(list_url(voting, room=query))
    assert r.status_code == 302
    assert r.headers["Location"] == enter_url(voting, household(compound, building, room))


def test_the_building_filter_narrows_the_room_search(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    r = client.get(list_url(voting, room="101"))
    assert r.status_code == 200 and rooms_listed(r.text) == ["101", "101"]
    r = client.get(list_url(voting, room="101", building="2号楼"))
    assert r.headers["Location"] == enter_url(voting, household(compound, 1, "101"))


def test_a_supervisor_searching_a_room_stays_on_the_list(client, login_as, voting, compound):
    login_as("supervisor", compound=compound)
    r = client.get(list_url(voting, room="2-201"))
    assert r.status_code == 200 and rooms_listed(r.text) == ["201"]


# --- one channel at a time -----------------------------------------------------------------


def test_the_form_offers_only_the_chosen_channels_answers(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    h = household(compound, 0, "101")
    paper = client.get(enter_url(voting, h), headers=EN).text  # paper unless asked
    assert 'name="channel" value="paper"' in paper
    assert 'value="not_reached"' not in paper and 'value="agree"' in paper
    visit = client.get(entry_target(voting, h, "door_to_door"), headers=EN).text
    assert 'name="channel" value="door_to_door"' in visit
    assert visit.count('value="not_reached"') == len(voting.items)
    assert "only for door-to-door visits" in visit
    # A channel the form does not offer falls back to paper.
    assert 'name="channel" value="paper"' in client.get(entry_target(voting, h, "online")).text


def test_a_tampered_post_is_refused_at_the_field(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    h = household(compound, 0, "101")
    r = client.post(enter_url(voting, h), data={
        "channel": "paper", **fields(voting, "not_reached", "agree")}, headers=EN)
    assert r.status_code == 400
    item = voting.items[0]
    assert re.search(rf'Choose an answer for item {item.number}\.</p>\s*<div class="choice-cards">'
                     rf'\s*<label class="choice-card agree"><input type="radio" '
                     rf'name="item_{item.id}"', r.text)
    assert 'value="not_reached"' not in r.text  # the form is still the paper one
    r = client.post(enter_url(voting, h), data={
        "channel": "online", **fields(voting, "agree", "agree")}, headers=EN)
    assert r.status_code == 400 and 'id="channel-error"' in r.text
    assert ballots.ballot_of(voting, h.id) is None
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 0


def test_the_proxy_fields_are_only_on_the_proxy_form(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    h = household(compound, 0, "101")
    for channel in ("paper", "door_to_door"):
        page = client.get(entry_target(voting, h, channel)).text
        assert 'name="proxy_name"' not in page and 'name="proxy_document"' not in page
    page = client.get(entry_target(voting, h, "proxy")).text
    assert 'name="proxy_name"' in page and 'name="proxy_document"' in page
    assert 'value="not_reached"' not in page


def test_a_correction_offers_only_paper_and_proxy(client, login_as, voting, compound):
    h = household(compound, 0, "101")
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    db.session.commit()
    login_as("committee", compound=compound)
    page = client.get(entry_target(voting, h, "door_to_door"), headers=EN).text
    tabs = re.search(r'<ul class="channel-tabs[^"]*">(.*?)</ul>', page, re.S)
    assert tabs is not None
    assert re.findall(r"channel=(\w+)", tabs.group(1)) == ["paper", "proxy"]
    assert 'name="channel" value="paper"' in page and 'name="then"' not in page


def test_once_the_vote_is_closed_only_second_entries_come_next(voting, compound):
    from datetime import timedelta

    from consult.process import workflow

    a, b = (factories.make_user("committee", compound=compound) for _ in range(2))
    voting.double_entry = True
    db.session.flush()
    entries.enter(a, voting, household(compound, 1, "201"), entries.Paper(
        BallotChannel.PAPER, answers(voting, "agree", "agree")))
    start = ballots.roll_entry_for(voting, household(compound, 0, "101").id)
    assert start is not None
    assert entries.next_to_enter(voting, start, b).room == "102"  # still open: any household
    workflow.close_expired(voting.vote_deadline + timedelta(minutes=1))
    assert not voting.vote_is_open()
    following = entries.next_to_enter(voting, start, b)
    assert following is not None and (following.building_name, following.room) == (
        "2号楼", "201")
    assert entries.next_to_enter(voting, start, a) is None  # its own first entry
