"""Paper ballots waiting through the API: the list (no answers), the differing entries of a
paper for a member who may decide, the decision with its audit event, and a proxy's written
authorisation attached later; and who is refused."""

import base64
import json

import pytest

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.extensions import db
from tests import factories
from tests.access.uploads import png_upload
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def paper(c, *values, channel="paper", **extra):
    return {"channel": channel, "choices": [{"item_id": i.id, "choice": v}
                                            for i, v in zip(c.items, values, strict=True)],
            **extra}


def png() -> dict[str, str]:
    return {"filename": "委托书.png",
            "content_base64": base64.b64encode(png_upload().read()).decode()}


@pytest.fixture
def household(compound):
    return compound.buildings[1].households[1]


@pytest.fixture
def enterers(compound):
    return [factories.make_user("committee", compound=compound) for _ in range(2)]


@pytest.fixture
def differing(client, voting, household, enterers):
    """Under double entry, two members entered the same paper differently over the API: the
    lead entry's id."""
    voting.double_entry = True
    url = f"/api/v1/consultations/{voting.id}/households/{household.id}/paper"
    first = client.post(url, json=paper(voting, "agree", "agree", serial="A-7"),
                        headers=bearer(enterers[0]))
    assert first.status_code == 200 and first.json["state"] == "awaiting_second", first.json
    second = client.post(url, json=paper(voting, "agree", "disagree", serial="A-7"),
                         headers=bearer(enterers[1]))
    assert second.status_code == 200 and second.json["state"] == "differs", second.json
    return first.json["entry_id"]


def test_two_differing_entries_and_a_third_member_decides(client, compound, voting,
                                                          household, enterers, differing):
    decider = factories.make_user("committee", compound=compound)
    headers = bearer(decider)
    listing = client.get(f"/api/v1/consultations/{voting.id}/entries", headers=headers)
    assert listing.status_code == 200, listing.json
    assert listing.json["pending"] == {"awaiting_second": 0, "differs": 1,
                                       "awaiting_authorisation": 0}
    assert listing.json["double_entry"] is True and listing.json["awaits_count"] is False
    (row,) = listing.json["items"]
    assert row["entry_id"] == differing and row["state"] == "differs"
    assert row["household_id"] == household.id and row["household"]
    assert row["actions"] == ["decide"]
    assert [e["entered_by"]["id"] for e in row["entries"]] == [u.id for u in enterers]
    assert all(set(e) == {"id", "state", "channel", "source", "entered_by", "entered_at"}
               for e in row["entries"])  # no answers in the list
    assert "agree" not in listing.text
    # The etag answers 304 for the same list.
    again = client.get(f"/api/v1/consultations/{voting.id}/entries",
                       headers=bearer(decider, **{"If-None-Match": listing.headers["ETag"]}))
    assert again.status_code == 304

    case = client.get(f"/api/v1/consultations/{voting.id}/entries/{differing}",
                      headers=headers)
    assert case.status_code == 200, case.json
    assert case.json["state"] == "differs" and case.json["owner_name"]
    first, second = case.json["entries"]
    assert [a["choice"] for a in first["choices"]] == ["agree", "agree"]
    assert [a["choice"] for a in second["choices"]] == ["agree", "disagree"]
    assert first["serial"] == "A-7" and second["entered_by"]["id"] == enterers[1].id

    url = f"/api/v1/consultations/{voting.id}/entries/{differing}/decision"
    done = client.post(url, json={"pick": str(second["id"]), "note": "看了纸质票"},
                       headers=headers)
    assert done.status_code == 200, done.json
    assert done.json == {"entry_id": differing, "state": "counted"}
    ballot = ballots.ballot_of(voting, household.id)
    assert ballot is not None and ballot.serial == "A-7"
    assert sorted(c.choice for c in ballot.choices) == ["agree", "disagree"]
    counts = [item["counts"] for item in ballots.current_tally(voting)["items"]]
    assert counts[1].get("disagree") == 1
    event = db.session.scalar(db.select(AuditEvent).where(
        AuditEvent.action == "ballot.entries_decided"))
    assert event is not None and event.actor_id == decider.id
    payload = json.loads(event.payload)
    assert payload["chosen"] == second["id"] and payload["from_paper"] is False
    assert audit.verify().ok
    # Decided once: nothing waits any more.
    twice = client.post(url, json={"pick": str(first["id"])}, headers=headers)
    assert twice.status_code == 409 and twice.json["error"]["code"] == "conflict"
    assert client.get(f"/api/v1/consultations/{voting.id}/entries/{differing}",
                      headers=headers).status_code == 409
    assert client.get(f"/api/v1/consultations/{voting.id}/entries",
                      headers=headers).json["items"] == []


def test_deciding_against_the_paper_itself(client, compound, voting, household, differing):
    decider = factories.make_user("admin")
    url = f"/api/v1/consultations/{voting.id}/entries/{differing}/decision"
    missing = client.post(url, json={"pick": "paper"}, headers=bearer(decider))
    assert missing.status_code == 400 and missing.json["error"]["errors"]
    r = client.post(url, json={"pick": "paper", **paper(voting, "disagree", "disagree",
                                                        serial="A-7")},
                    headers=bearer(decider))
    assert r.status_code == 200 and r.json["state"] == "counted", r.json
    ballot = ballots.ballot_of(voting, household.id)
    assert {c.choice for c in ballot.choices} == {"disagree"}
    event = db.session.scalar(db.select(AuditEvent).where(
        AuditEvent.action == "ballot.entries_decided"))
    assert json.loads(event.payload)["from_paper"] is True


def test_who_may_see_and_decide(client, compound, voting, enterers, differing, resident):
    case_url = f"/api/v1/consultations/{voting.id}/entries/{differing}"
    url = f"{case_url}/decision"
    body = {"pick": "paper", **paper(voting, "agree", "agree")}
    # A member who made one of the entries: neither their answers nor the decision.
    for enterer in enterers:
        seen = client.get(case_url, headers=bearer(enterer))
        assert seen.status_code == 403 and "agree" not in seen.text
        assert client.post(url, json=body, headers=bearer(enterer)).status_code == 403
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    supervisor = factories.make_user("supervisor", compound=compound)
    for user in (elsewhere, resident, supervisor):
        assert client.get(case_url, headers=bearer(user)).status_code == 403
        assert client.post(url, json=body, headers=bearer(user)).status_code == 403
    assert client.get(case_url).status_code == 401
    assert client.post(url, json=body).status_code == 401
    # The supervisor sees the list (no answers), and is offered no decision.
    listing = client.get(f"/api/v1/consultations/{voting.id}/entries",
                         headers=bearer(supervisor))
    assert listing.status_code == 200 and listing.json["items"][0]["actions"] == []
    for user in (elsewhere, resident):
        assert client.get(f"/api/v1/consultations/{voting.id}/entries",
                          headers=bearer(user)).status_code == 403
    assert client.get(f"/api/v1/consultations/{voting.id}/entries").status_code == 401
    # Another consultation's entry id is not this one's.
    other = factories.make_consultation(compound, stage="discussing")
    member = factories.make_user("committee", compound=compound)
    assert client.get(f"/api/v1/consultations/{other.id}/entries/{differing}",
                      headers=bearer(member)).status_code == 404
    assert ballots.ballot_of(voting, voting.compound.buildings[1].households[1].id) is None
    assert "ballot.entries_decided" not in audit_actions()


def test_a_bad_pick_is_named(client, compound, voting, differing):
    member = factories.make_user("committee", compound=compound)
    url = f"/api/v1/consultations/{voting.id}/entries/{differing}/decision"
    for pick in ("999999999", str(differing + 1000)):
        r = client.post(url, json={"pick": pick}, headers=bearer(member))
        assert r.status_code == 400 and "pick" in r.json["error"]["errors"], r.json
    for body in ({"pick": "neither"}, {}, {"pick": "paper", "channel": "online"},
                 {"pick": 5}):
        r = client.post(url, json=body, headers=bearer(member))
        assert r.status_code == 400 and r.json["error"]["code"] == "validation_failed"
    assert client.post(f"/api/v1/consultations/{voting.id}/entries/999999/decision",
                       json={"pick": "paper"}, headers=bearer(member)).status_code == 404


def test_a_paper_waiting_for_its_second_entry_is_no_decision(client, compound, voting,
                                                             household, enterers):
    voting.double_entry = True
    r = client.post(f"/api/v1/consultations/{voting.id}/households/{household.id}/paper",
                    json=paper(voting, "agree", "agree"), headers=bearer(enterers[0]))
    lead = r.json["entry_id"]
    listing = client.get(f"/api/v1/consultations/{voting.id}/entries",
                         headers=bearer(enterers[0])).json
    assert listing["items"][0]["actions"] == []  # its second entry is another member's
    assert client.get(f"/api/v1/consultations/{voting.id}/entries",
                      headers=bearer(enterers[1])).json["items"][0]["actions"] == [
        "second_entry"]
    member = factories.make_user("committee", compound=compound)
    r = client.post(f"/api/v1/consultations/{voting.id}/entries/{lead}/decision",
                    json={"pick": str(lead)}, headers=bearer(member))
    assert r.status_code == 409


def test_a_proxy_ballot_counts_once_its_authorisation_is_attached(client, compound, voting,
                                                                  household, resident):
    voting.proxy_document_required = True
    member = factories.make_user("committee", compound=compound)
    r = client.post(f"/api/v1/consultations/{voting.id}/households/{household.id}/paper",
                    json=paper(voting, "agree", "agree", channel="proxy", proxy_name="李四"),
                    headers=bearer(member))
    assert r.status_code == 200 and r.json["state"] == "awaiting_authorisation", r.json
    listing = client.get(f"/api/v1/consultations/{voting.id}/entries",
                         headers=bearer(member)).json
    assert listing["items"][0]["actions"] == ["attach_authorisation"]
    url = f"/api/v1/consultations/{voting.id}/households/{household.id}/authorisation"
    bad = client.post(url, json={"document": {"filename": "a.png", "content_base64": "@@"}},
                      headers=bearer(member))
    assert bad.status_code == 400 and "document" in bad.json["error"]["errors"]
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    supervisor = factories.make_user("supervisor", compound=compound)
    for user in (elsewhere, resident, supervisor):
        assert client.post(url, json={"document": png()},
                           headers=bearer(user)).status_code == 403
    assert client.post(url, json={"document": png()}).status_code == 401
    assert ballots.ballot_of(voting, household.id) is None
    done = client.post(url, json={"document": png()}, headers=bearer(member))
    assert done.status_code == 200 and done.json == {"outcome": "counted"}, done.json
    ballot = ballots.ballot_of(voting, household.id)
    assert ballot is not None and ballot.proxy_document_id is not None
    assert "ballot.authorisation_attached" in audit_actions()
    # A household without a proxy ballot has nothing to attach it to.
    plain = compound.buildings[0].households[1]
    r = client.post(f"/api/v1/consultations/{voting.id}/households/{plain.id}/authorisation",
                    json={"document": png()}, headers=bearer(member))
    assert r.status_code == 409
