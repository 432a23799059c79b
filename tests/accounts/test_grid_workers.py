"""Grid workers (网格员): they read everything in their grids' compounds, record offline
opinions and door-to-door answers there, and nothing else; another grid is closed to them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult.accounts.models import UserScope
from consult.audit import service as audit
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel
from consult.consultations.models import Opinion
from consult.consultations.states import Action
from consult.core.errors import PermissionDenied
from consult.core.models import utcnow
from consult.core.policy import Role, can
from consult.extensions import db
from consult.process import workflow
from consult.registry.models import Building
from tests import factories
from tests.perf.test_query_counts import counting

EN = {"Accept-Language": "en"}


def populated(name: str, community):
    compound = factories.make_compound(name, community)
    for b in ("1号楼", "2号楼"):
        building = factories.make_building(compound, b)
        for room in ("101", "102"):
            factories.make_household(building, room=room, owner_name=f"{name}{b}{room}")
    return compound


@pytest.fixture
def two_grids():
    """One community with grid A (compounds a1, a2) and grid B (compound b)."""
    community = factories.make_community("解放社区")
    grid_a = factories.make_grid(community, "一网格")
    grid_b = factories.make_grid(community, "二网格")
    a1, a2, b = populated("甲院", community), populated("乙院", community), \
        populated("丙院", community)
    a1.grid = a2.grid = grid_a
    b.grid = grid_b
    db.session.flush()
    return {"grid_a": grid_a, "grid_b": grid_b, "a1": a1, "a2": a2, "b": b}


def voting(compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


def first_household(compound):
    return compound.buildings[0].households[0]


def test_scoped_compounds_are_those_of_the_grids_in_one_query(app, two_grids):
    worker = factories.make_user("grid_worker", grid=two_grids["grid_a"])
    # A committee member's community scope still works beside the grid scopes.
    db.session.expire(worker)
    with counting() as statements:
        ids = worker.scoped_compound_ids()
    assert ids == {two_grids["a1"].id, two_grids["a2"].id}
    # Loading the scopes, then one query for the compounds of all grids and communities.
    assert len([s for s in statements if "FROM compound" in s]) == 1
    mixed = factories.make_user("committee", compound=two_grids["b"],
                                community=factories.make_community("别的社区"))
    db.session.add(UserScope(user=mixed, grid=two_grids["grid_a"]))
    db.session.flush()
    db.session.expire(mixed)
    with counting() as statements:
        assert mixed.scoped_compound_ids() == {two_grids["a1"].id, two_grids["a2"].id,
                                               two_grids["b"].id}
    assert len([s for s in statements if "FROM compound" in s]) == 1


def test_a_scope_names_exactly_one_target(app, two_grids):
    worker = factories.make_user("grid_worker")
    db.session.add(UserScope(user=worker, grid=two_grids["grid_a"],
                             compound=two_grids["b"]))
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        db.session.flush()
    db.session.rollback()


def test_the_policy_gives_the_grid_worker_reading_and_recording_only(app, two_grids):
    worker = factories.make_user("grid_worker", grid=two_grids["grid_a"])
    a1, b = two_grids["a1"], two_grids["b"]
    for action in ("registry.view", "audit.view", "ballot.inspect", "consultation.view_drafts",
                   "opinion.record", "ballot.visit"):
        assert can(worker, action, a1), action
        assert not can(worker, action, b), action
    for action in ("registry.edit", "registry.import", "registry.access_codes",
                   "registry.structure", "accounts.manage", "consultation.manage",
                   "ballot.enter", "ballot.decide", "implementation.log",
                   "implementation.inspect"):
        assert not can(worker, action, a1), action
    assert Role.GRID_WORKER.value == "grid_worker"


def test_grid_a_worker_cannot_read_grid_b(client, login_as, two_grids):
    a1, b = two_grids["a1"], two_grids["b"]
    draft_a = factories.make_consultation(a1, title="甲院草案")
    draft_b = factories.make_consultation(b, title="丙院草案")
    vote_a, vote_b = voting(a1), voting(b)
    event_a = audit.record(None, "registry.household.updated", first_household(a1), {})
    event_b = audit.record(None, "registry.household.updated", first_household(b), {})
    login_as("grid_worker", grid=two_grids["grid_a"])
    db.session.commit()

    def status(url: str) -> int:
        return client.get(url, headers=EN).status_code

    # Registry
    assert status(f"/registry/compounds/{a1.id}") == 200
    assert status(f"/registry/compounds/{b.id}") == 403
    assert status(f"/registry/households/{first_household(a1).id}") == 200
    assert status(f"/registry/households/{first_household(b).id}") == 403
    # Consultations, drafts included
    assert status(f"/consultations/{draft_a.id}") == 200
    assert status(f"/consultations/{draft_b.id}") == 404
    listing = client.get("/consultations/", headers=EN).text
    assert "甲院草案" in listing and "丙院草案" not in listing
    # Ballots
    assert status(f"/consultations/{vote_a.id}/ballots") == 200
    assert status(f"/consultations/{vote_b.id}/ballots") == 403
    # Audit
    assert status(f"/audit/{event_a.seq}") == 200
    assert status(f"/audit/{event_b.seq}") == 403
    # Entry
    assert status(f"/consultations/{vote_a.id}/ballots/{first_household(a1).id}/enter") == 200
    assert status(f"/consultations/{vote_b.id}/ballots/{first_household(b).id}/enter") == 403


def test_a_grid_worker_records_door_to_door_answers_but_no_paper_ballot(client, login_as,
                                                                         two_grids):
    a1 = two_grids["a1"]
    c = voting(a1)
    worker = login_as("grid_worker", grid=two_grids["grid_a"])
    db.session.commit()
    home, other = a1.buildings[0].households
    url = f"/consultations/{c.id}/ballots/{home.id}/enter"
    listing = client.get(f"/consultations/{c.id}/ballots", headers=EN).text
    # The roll offers the door-to-door form, and neither paper entry nor a file import.
    assert f"{url}?channel=door_to_door" in listing
    assert "Record a door-to-door answer" in listing
    assert "Import paper ballots from a file" not in listing
    page = client.get(url, headers=EN).text
    # The form offers the door-to-door channel alone.
    assert 'value="door_to_door"' in page
    assert 'value="paper"' not in page and 'value="proxy"' not in page
    answers = {f"item_{item.id}": "agree" for item in c.items}
    r = client.post(f"/consultations/{c.id}/ballots/{other.id}/enter",
                    data={"channel": "paper", **answers}, headers=EN)
    assert r.status_code in (400, 403)
    assert ballots.ballot_of(c, other.id) is None
    # The service refuses a paper ballot too, whoever calls it.
    with pytest.raises(PermissionDenied):
        entries.enter(worker, c, other, entries.Paper(
            BallotChannel.PAPER, {item.id: "agree" for item in c.items}))
    db.session.rollback()
    r = client.post(url, data={"channel": "door_to_door", **answers}, headers=EN)
    assert r.status_code == 302, r.text[:500]
    ballot = ballots.ballot_of(c, home.id)
    assert ballot is not None and ballot.channel == "door_to_door"
    assert ballot.entered_by_id == worker.id
    assert db.session.scalar(select(func.count(Ballot.id)).where(
        Ballot.consultation_id == c.id)) == 1


def test_a_grid_worker_cannot_open_or_close_a_stage(client, login_as, two_grids):
    a1 = two_grids["a1"]
    draft = factories.make_consultation(a1)
    c = voting(a1)
    login_as("grid_worker", grid=two_grids["grid_a"])
    db.session.commit()
    r = client.post(f"/consultations/{draft.id}/stage",
                    data={"action": Action.START_SOLICITING.value}, headers=EN)
    assert r.status_code == 403
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": Action.CLOSE_VOTE.value, "confirmed": "1"}, headers=EN)
    assert r.status_code == 403
    db.session.refresh(draft)
    db.session.refresh(c)
    assert draft.stage == "draft" and c.stage == "voting"


def test_a_grid_worker_records_an_offline_opinion_in_its_grid_only(client, login_as,
                                                                    two_grids):
    a1, b = two_grids["a1"], two_grids["b"]
    in_a, in_b = factories.make_consultation(a1), factories.make_consultation(b)
    for c in (in_a, in_b):
        workflow.apply(c, Action.START_SOLICITING, None)
    login_as("grid_worker", grid=two_grids["grid_a"])
    db.session.commit()
    building = db.session.scalar(select(Building).where(Building.compound_id == a1.id))
    form = {"category": "other", "text": "楼道灯坏了", "channel": "door_to_door",
            "building_id": str(building.id), "unit": "1", "room": "101"}
    r = client.post(f"/consultations/{in_a.id}/opinions/record", data=form, headers=EN)
    assert r.status_code == 302, r.text[:800]
    assert db.session.scalar(select(func.count(Opinion.id)).where(
        Opinion.consultation_id == in_a.id)) == 1
    r = client.post(f"/consultations/{in_b.id}/opinions/record", data=form, headers=EN)
    assert r.status_code == 403
    assert client.get(f"/consultations/{in_a.id}/edit", headers=EN).status_code == 403


def test_an_administrator_creates_a_grid_worker_and_gives_it_grids(client, login_as,
                                                                    two_grids):
    login_as("admin")
    db.session.commit()
    r = client.post("/admin/users/new", data={
        "username": "wangge", "display_name": "王网格", "role": "grid_worker",
        "password": "a-long-enough-password-2026"}, headers=EN)
    assert r.status_code == 302, r.text[:800]
    from consult.accounts.models import User
    worker = db.session.scalar(select(User).where(User.username == "wangge"))
    assert worker.role == "grid_worker"
    page = client.get(f"/admin/users/{worker.id}", headers=EN).text
    # Grids are offered, compounds and whole communities are not.
    assert f'value="grid:{two_grids["grid_a"].id}"' in page
    assert "compound:" not in page and "community:" not in page
    r = client.post(f"/admin/users/{worker.id}/scopes",
                    data={"target": f"grid:{two_grids['grid_a'].id}"}, headers=EN)
    assert r.status_code == 302
    r = client.post(f"/admin/users/{worker.id}/scopes",
                    data={"target": f"compound:{two_grids['b'].id}"}, headers=EN)
    assert r.status_code == 302  # not among the choices: refused, nothing added
    db.session.expire_all()
    worker = db.session.get(User, worker.id)
    assert [s.grid_id for s in worker.scopes] == [two_grids["grid_a"].id]
    assert worker.scoped_compound_ids() == {two_grids["a1"].id, two_grids["a2"].id}
    assert "一网格" in client.get(f"/admin/users/{worker.id}", headers=EN).text
