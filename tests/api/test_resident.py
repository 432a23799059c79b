"""The household's endpoints: its account, tasks and consultations, and the vote path (cast,
change, idempotency, receipt, proof) through the web's services."""

from datetime import timedelta

from sqlalchemy import func, select

from consult.audit import service as audit
from consult.ballots import service as ballots
from consult.ballots.models import Ballot
from consult.core.models import utcnow
from consult.extensions import db
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def answers(c, *values):
    return {"choices": [{"item_id": item.id, "choice": v}
                        for item, v in zip(c.items, values, strict=True)]}


def put_ballot(client, c, headers, body, key="key-0000000001"):
    return client.put(f"/api/v1/consultations/{c.id}/ballot", json=body,
                      headers={**headers, "Idempotency-Key": key})


def test_me_shows_the_own_household_only(client, resident, compound):
    r = client.get("/api/v1/me", headers=bearer(resident))
    assert r.status_code == 200
    household = compound.buildings[0].households[0]
    assert r.json["household"] == {
        "id": household.id, "label": household.label, "building": "1号楼",
        "unit": household.unit, "room": household.room,
        "compound": {"id": compound.id, "name": compound.name}}
    assert "owner_name" not in r.text and "phone" not in r.text
    assert r.headers["Cache-Control"] == "no-store"


def test_etag_gives_304_when_unchanged(client, resident):
    headers = bearer(resident)
    first = client.get("/api/v1/me", headers=headers)
    etag = first.headers["ETag"]
    again = client.get("/api/v1/me", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other = client.get("/api/v1/me", headers={**headers, "If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert {"Authorization", "Accept-Language"} <= set(first.vary)


def test_tasks_list_the_open_vote(client, resident, voting):
    r = client.get("/api/v1/me/tasks", headers=bearer(resident))
    assert r.status_code == 200
    assert [(t["kind"], t["consultation_id"], t["done"]) for t in r.json["items"]] == [
        ("vote", voting.id, False)]


def test_consultations_of_the_own_compound_with_stage_filter_and_cursor(client, resident,
                                                                        compound, voting):
    others = [factories.make_consultation(compound, stage="soliciting", title=f"议题{n}")
              for n in range(3)]
    elsewhere = factories.make_consultation(factories.make_compound("别处"), stage="soliciting")
    factories.make_consultation(compound, stage="draft", title="草稿")
    headers = bearer(resident)
    r = client.get("/api/v1/consultations?limit=2", headers=headers)
    assert r.status_code == 200
    ids = [c["id"] for c in r.json["items"]]
    assert ids == [others[2].id, others[1].id] and r.json["next_cursor"]
    rest = client.get(f"/api/v1/consultations?limit=2&cursor={r.json['next_cursor']}",
                      headers=headers).json
    assert [c["id"] for c in rest["items"]] == [others[0].id, voting.id]
    assert rest["next_cursor"] is None
    assert elsewhere.id not in ids + [c["id"] for c in rest["items"]]
    voting_only = client.get("/api/v1/consultations?stage=voting", headers=headers).json
    assert [c["id"] for c in voting_only["items"]] == [voting.id]
    assert voting_only["items"][0]["vote_open"] is True
    bad = client.get("/api/v1/consultations?cursor=forged", headers=headers)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "validation_failed"
    assert "cursor" in bad.json["error"]["errors"]
    big = client.get("/api/v1/consultations?limit=1000", headers=headers)
    assert big.status_code == 400 and "limit" in big.json["error"]["errors"]


def test_detail_with_items_and_drafts_hidden(client, resident, compound, voting):
    r = client.get(f"/api/v1/consultations/{voting.id}", headers=bearer(resident))
    assert r.status_code == 200
    assert [i["id"] for i in r.json["items"]] == [i.id for i in voting.items]
    draft = factories.make_consultation(compound)
    hidden = client.get(f"/api/v1/consultations/{draft.id}", headers=bearer(resident))
    assert hidden.status_code == 404 and hidden.json["error"]["code"] == "not_found"
    assert client.get("/api/v1/consultations/999999").status_code == 404


def test_vote_change_and_receipt_through_the_web_services(client, resident, voting, compound):
    headers = bearer(resident)
    household = compound.buildings[0].households[0]
    before = client.get(f"/api/v1/consultations/{voting.id}/ballot", headers=headers).json
    assert before["ballot"] is None and before["on_roll"] and before["vote_open"]
    r = put_ballot(client, voting, headers, answers(voting, "agree", "disagree"))
    assert r.status_code == 200, r.json
    ballot = ballots.ballot_of(voting, household.id)
    assert r.json["ballot"]["receipt"] == ballot.receipt and ballot.channel == "online"
    assert [c["choice"] for c in r.json["ballot"]["choices"]] == ["agree", "disagree"]
    changed = put_ballot(client, voting, headers, answers(voting, "abstain", "agree"),
                         key="key-0000000002")
    assert changed.status_code == 200 and changed.json["ballot"]["version"] == 2
    assert db.session.scalar(select(func.count(Ballot.id))) == 1  # one current ballot
    assert audit_actions()[-2:] == ["ballot.cast", "ballot.changed"]
    receipt = client.get(f"/api/v1/consultations/{voting.id}/receipt", headers=headers)
    assert receipt.status_code == 200
    assert receipt.json["receipt"] == changed.json["ballot"]["receipt"]
    assert audit.verify().ok


def test_idempotency_key_replays_and_refuses_another_body(client, resident, voting):
    headers = bearer(resident)
    body = answers(voting, "agree", "agree")
    first = put_ballot(client, voting, headers, body)
    again = put_ballot(client, voting, headers, body)
    assert again.status_code == 200 and again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert audit_actions().count("ballot.changed") == 0  # not carried out twice
    other = put_ballot(client, voting, headers, answers(voting, "disagree", "agree"))
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_key_reused"
    missing = client.put(f"/api/v1/consultations/{voting.id}/ballot", json=body,
                         headers=headers)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json["error"]["errors"]
    # A key belongs to its account: another household may use the same one.
    neighbour = factories.make_user("resident",
                                    household=voting.compound.buildings[1].households[0])
    theirs = put_ballot(client, voting, bearer(neighbour), body)
    assert theirs.status_code == 200
    assert theirs.json["ballot"]["receipt"] != first.json["ballot"]["receipt"]


def test_refused_ballots(client, resident, voting, compound):
    headers = bearer(resident)
    partial = put_ballot(client, voting, headers,
                         {"choices": [{"item_id": voting.items[0].id, "choice": "agree"}]})
    assert partial.status_code == 400 and partial.json["error"]["code"] == "validation_failed"
    assert f"item_{voting.items[1].id}" in partial.json["error"]["errors"]
    foreign = factories.make_consultation(compound, stage="soliciting")
    foreign_item = factories.make_consultation(compound, items=1)
    wrong_item = put_ballot(client, voting, headers, {"choices": [
        {"item_id": voting.items[0].id, "choice": "agree"},
        {"item_id": voting.items[1].id, "choice": "agree"},
        {"item_id": foreign_item.items[0].id, "choice": "agree"}]}, key="key-0000000003")
    assert wrong_item.status_code == 400
    closed = put_ballot(client, foreign, headers, {"choices": []}, key="key-0000000004")
    assert closed.status_code == 400  # at least one answer
    not_open = put_ballot(client, foreign, headers,
                          {"choices": [{"item_id": 1, "choice": "agree"}]}, key="key-000000005")
    assert not_open.status_code == 409 and not_open.json["error"]["code"] == "vote_closed"
    bad_choice = put_ballot(client, voting, headers, answers(voting, "yes", "agree"),
                            key="key-0000000006")
    assert bad_choice.status_code == 400
    assert db.session.scalar(select(func.count(Ballot.id))) == 0


def test_after_the_deadline_the_vote_is_closed(client, resident, voting):
    headers = bearer(resident)
    voting.vote_deadline = utcnow() - timedelta(minutes=1)
    db.session.flush()
    r = put_ballot(client, voting, headers, answers(voting, "agree", "agree"))
    assert r.status_code == 409 and r.json["error"]["code"] == "vote_closed"


def test_neighbours_and_other_compounds_are_refused(client, voting, compound):
    other = factories.make_compound("别的小区")
    stranger = factories.make_user("resident", compound=other)
    headers = bearer(stranger)
    r = put_ballot(client, voting, headers, answers(voting, "agree", "agree"))
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/consultations/{voting.id}/ballot",
                      headers=headers).status_code == 403
    member = factories.make_user("committee", compound=compound)
    staff = put_ballot(client, voting, bearer(member), answers(voting, "agree", "agree"))
    assert staff.status_code == 403  # staff enter paper ballots, they do not vote online
    anonymous = put_ballot(client, voting, {}, answers(voting, "agree", "agree"))
    assert anonymous.status_code == 401


def test_receipt_proof_after_the_count(client, resident, compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "voting")  # every household votes on paper; this one then online
    headers = bearer(resident)
    cast = put_ballot(client, c, headers, answers(c, "agree", "disagree")).json
    receipt = cast["ballot"]["receipt"]
    early = client.post(f"/api/v1/consultations/{c.id}/proof", json={"receipt": receipt})
    assert early.status_code == 409
    factories.walk_to(c, "vote_counted")
    r = client.post(f"/api/v1/consultations/{c.id}/proof", json={"receipt": receipt})
    assert r.status_code == 200, r.json
    assert r.json["holds"] is True
    assert r.json["answers"] == [{"number": 1, "answer": "agree"},
                                 {"number": 2, "answer": "disagree"}]
    wrong = client.post(f"/api/v1/consultations/{c.id}/proof",
                        json={"receipt": "AAAA-AAAA-AAAA-AAAA"})
    assert wrong.status_code == 404 and wrong.json["error"]["code"] == "receipt_not_found"
