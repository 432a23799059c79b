"""The committee through the API: stage steps over the workflow, an irreversible one only
with the numbers its confirmation shows; the tally as the tally page has it."""

from datetime import timedelta

from consult.core.models import utcnow
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def test_opening_the_vote_needs_the_numbers_shown(client, compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    member = factories.make_user("committee", compound=compound)
    headers = bearer(member)
    steps = client.get(f"/api/v1/consultations/{c.id}/steps", headers=headers)
    assert steps.status_code == 200
    step = next(s for s in steps.json["items"] if s["action"] == "open_vote")
    assert step["needs_confirmation"] and step["possible"] and step["consequences"]
    shown = step["confirm"]
    assert shown == {"households": 8, "items": 2}
    # A household is registered meanwhile: the roll would not be the one confirmed.
    factories.make_household(compound.buildings[0], room="909")
    url = f"/api/v1/consultations/{c.id}/steps"
    stale = client.post(url, json={"action": "open_vote", "confirm": shown}, headers=headers)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "confirmation_mismatch"
    missing = client.post(url, json={"action": "open_vote"}, headers=headers)
    assert missing.status_code == 409
    assert c.stage == "discussing"
    done = client.post(url, json={"action": "open_vote",
                                  "confirm": {"households": 9, "items": 2}}, headers=headers)
    assert done.status_code == 200, done.json
    assert done.json["stage"] == "voting" and done.json["vote_open"] is True
    assert audit_actions()[-2:] == ["consultation.stage_changed", "audit.anchor"]
    live = client.get(f"/api/v1/consultations/{c.id}/tally", headers=headers)
    assert live.status_code == 200 and live.json["provisional"] is True
    assert client.get(f"/api/v1/consultations/{c.id}/tally").status_code == 401


def test_steps_are_the_committee_s_in_its_scope(client, compound, voting, resident):
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    url = f"/api/v1/consultations/{voting.id}/steps"
    assert client.get(url, headers=bearer(elsewhere)).status_code == 403
    assert client.post(url, json={"action": "close_vote"},
                       headers=bearer(elsewhere)).status_code == 403
    assert client.post(url, json={"action": "close_vote"},
                       headers=bearer(resident)).status_code == 403
    supervisor = factories.make_user("supervisor", compound=compound)
    assert client.get(url, headers=bearer(supervisor)).status_code == 403
    live = client.get(f"/api/v1/consultations/{voting.id}/tally", headers=bearer(supervisor))
    assert live.status_code == 200 and live.json.get("provisional")
    assert client.get(f"/api/v1/consultations/{voting.id}/tally",
                      headers=bearer(resident)).status_code == 403


def test_an_unconfirmed_step_is_taken_as_on_the_page(client, compound):
    c = factories.make_consultation(compound, stage="draft")
    member = factories.make_user("committee", compound=compound)
    r = client.post(f"/api/v1/consultations/{c.id}/steps",
                    json={"action": "start_soliciting"}, headers=bearer(member))
    assert r.status_code == 200 and r.json["stage"] == "soliciting"
    wrong = client.post(f"/api/v1/consultations/{c.id}/steps", json={"action": "count_vote"},
                        headers=bearer(member))
    assert wrong.status_code == 409


def paper(c, channel="paper", value="agree", **extra):
    return {"channel": channel, "choices": [{"item_id": i.id, "choice": value}
                                            for i in c.items], **extra}


def test_paper_ballots_with_double_entry(client, compound, voting):
    from consult.ballots import service as ballots

    voting.double_entry = True
    household = compound.buildings[1].households[1]
    url = f"/api/v1/consultations/{voting.id}/households/{household.id}/paper"
    first, second = (factories.make_user("committee", compound=compound) for _ in range(2))
    r = client.post(url, json=paper(voting, serial="A-1"), headers=bearer(first))
    assert r.status_code == 200, r.json
    assert r.json["state"] == "awaiting_second"
    assert ballots.ballot_of(voting, household.id) is None  # not counted on one entry
    again = client.post(url, json=paper(voting, serial="A-1"), headers=bearer(first))
    assert again.status_code == 403  # the second entry must be another member's
    done = client.post(url, json=paper(voting, serial="A-1"), headers=bearer(second))
    assert done.status_code == 200 and done.json["state"] == "counted"
    ballot = ballots.ballot_of(voting, household.id)
    assert ballot is not None and ballot.channel == "paper" and ballot.serial == "A-1"
    # Over the ballot it now has, only a correction with its reason and evidence.
    correction = client.post(url, json=paper(voting, value="disagree"), headers=bearer(first))
    assert correction.status_code == 400
    assert {"reason", "evidence"} <= set(correction.json["error"]["errors"])


def test_who_may_enter_paper_ballots(client, compound, voting, resident):
    household = compound.buildings[1].households[1]
    url = f"/api/v1/consultations/{voting.id}/households/{household.id}/paper"
    grid_worker = factories.make_user("grid_worker", compound=compound)
    assert client.post(url, json=paper(voting), headers=bearer(grid_worker)).status_code == 403
    door = client.post(url, json=paper(voting, channel="door_to_door"),
                       headers=bearer(grid_worker))
    assert door.status_code == 200, door.json
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    assert client.post(url, json=paper(voting), headers=bearer(elsewhere)).status_code == 403
    assert client.post(url, json=paper(voting), headers=bearer(resident)).status_code == 403
    stranger = factories.make_household(factories.make_building(factories.make_compound("外")))
    member = factories.make_user("committee", compound=compound)
    outside = client.post(f"/api/v1/consultations/{voting.id}/households/{stranger.id}/paper",
                          json=paper(voting), headers=bearer(member))
    assert outside.status_code == 404
