"""The audit export: who may download it and when, what it holds and what it never holds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import records
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import service
from consult.consultations.models import Consultation
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import audit_export, workflow
from tests import factories
from tests.reliability.test_recount import assert_same_numbers

RECOUNT = Path(__file__).resolve().parents[2] / "tools" / "recount.py"
HOUR = timedelta(hours=1)


class Votes:
    """Consultations of one compound, run as the committee runs them."""

    def __init__(self, owner_keys: bool = False) -> None:
        self.compound = factories.make_compound("河畔小区")
        self.committee = factories.make_user("committee", compound=self.compound)
        building = factories.make_building(self.compound)
        self.households = [
            factories.make_household(building, room=f"{n + 1}01", area_dm2=7000 + 311 * n,
                                     owner_name=f"业主甲{n}", phone=f"1370000{n:04d}",
                                     owner_key=f"证件{n // 2:04d}" if owner_keys else None)
            for n in range(6)]
        self.resident = factories.make_user("resident", household=self.households[0])
        self.start = utcnow() - timedelta(days=20)

    def vote(self, secrecy: str = "open", answers: str = "aadax", title: str = "更换单元门",
             running: bool = False) -> Consultation:
        """A vote that opened 20 days ago and closed after two days, or is still ``running``."""
        deadline = utcnow() + 48 * HOUR if running else self.start + 48 * HOUR
        consultation = service.create(self.committee, self.compound, service.settings(
            title=title, summary="", rule_code="household_majority",
            secrecy=secrecy, locale="zh_Hans", solicitation_deadline=None,
            vote_deadline=deadline, publicity_days=7, proxy_cap=2), now=self.start)
        service.add_item(self.committee, consultation, service.item_data(
            title="更换单元门", description="", cost="800"))
        for action in (Action.START_SOLICITING, Action.START_PROPOSING,
                       Action.START_DISCUSSION, Action.OPEN_VOTE):
            workflow.apply(consultation, action, self.committee, now=self.start)
        self.cast(consultation, answers, self.start)
        return consultation

    def cast(self, consultation: Consultation, answers: str, at: datetime) -> None:
        words = {"a": "agree", "d": "disagree", "x": "abstain"}
        item = consultation.items[0].id
        for n, answer in enumerate(answers):
            online = n == 0  # the resident's own household, signed in
            ballots.cast(
                self.resident if online else self.committee, consultation, self.households[n],
                {item: words[answer]}, BallotChannel.ONLINE if online else BallotChannel.PROXY
                if n == 1 else BallotChannel.PAPER, now=at + (n + 1) * HOUR,
                proxy=ballots.Proxy("受托人乙", ballots.proxy_identity("受托人乙"), None)
                if n == 1 else None)

    def close(self, consultation: Consultation) -> None:
        deadline = consultation.vote_deadline
        workflow.apply(consultation, Action.CLOSE_VOTE, self.committee, now=deadline)
        workflow.apply(consultation, Action.PUBLISH_RESOLUTION, self.committee,
                       now=deadline + HOUR)


def url(consultation: Consultation) -> str:
    return f"/audit/consultations/{consultation.id}/export.json"


# The system's Python where there is one (not the one running the tests, with the app's
# packages): with -I -S it has nothing but its standard library.
PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def recount(body: str, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "export.json"
    path.write_text(body, encoding="utf-8")
    done = subprocess.run([PYTHON3, "-I", "-S", str(RECOUNT), str(path), "--json", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_counted_open_vote_is_public_and_recounts(client, tmp_path):
    votes = Votes()
    counted = votes.vote()
    votes.close(counted)
    other = votes.vote(answers="ddd", title="增设停车位", running=True)  # same compound
    response = client.get(url(counted))
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.text)
    assert (data["format"], data["version"], data["scope"]) == ("consult-audit-export", 3,
                                                                 "consultation")
    assert data["consultation"]["id"] == counted.id
    head = audit.chain_head(chain=counted.id)
    assert data["chain_head"] == {"chain": counted.id, "seq": head[0], "hash": head[1]}
    # The consultation's whole chain, from its first event to its head; what a recount does
    # not need only by its place and hash.
    assert [(e["chain_id"], e["chain_seq"]) for e in data["events"]] == [
        (counted.id, n) for n in range(1, head[0] + 1)]
    assert data["events"][-1]["hash"] == head[1]
    omitted = [e for e in data["events"] if e.get("omitted")]
    assert all(set(e) == {"chain_id", "chain_seq", "prev_hash", "hash", "omitted"}
               for e in omitted)
    # Its anchors in the global chain: one per stage change.
    assert data["anchors"] and {json.loads(a["payload"])["chain"] for a in data["anchors"]} == {
        counted.id}
    assert {(a["chain_id"], a["action"]) for a in data["anchors"]} == {(0, "audit.anchor")}
    data["events"] = [e for e in data["events"] if not e.get("omitted")]
    actions = {e["action"] for e in data["events"]}
    assert {"consultation.created", "ballot.roll_frozen", "ballot.cast",
            "ballot.result_frozen", "notice.published"} <= actions
    assert actions <= set().union(*audit_export.CONSULTATION_EVENTS.values())
    for event in data["events"]:
        payload = json.loads(event["payload"])
        if event["object_type"] == "ballot":
            assert payload["consultation_id"] == counted.id
        assert event["object_type"] != "consultation" or event["object_id"] == str(counted.id)
    assert other.title not in response.text
    assert [n["kind"] for n in data["notices"]] == ["resolution"]
    assert (code := recount(response.text, tmp_path)[0]) == 0, code


def test_the_export_holds_no_personal_data(client):
    votes = Votes()
    counted = votes.vote()
    votes.close(counted)
    text = client.get(url(counted)).text
    for household in votes.households:
        assert household.owner_name not in text and household.phone not in text
    assert "受托人乙" not in text  # the proxy's name: only "proxy": true
    # The household that voted online is not named by its account.
    assert votes.resident.username not in text
    online = [json.loads(line.rstrip(",")) for line in text.splitlines()
              if '"channel\\":\\"online' in line]
    assert online and {e["actor_label"] for e in online} == {"(household)"}
    assert {e["actor_id"] for e in online} == {None}


def test_an_online_ballot_names_no_account_in_the_trail(compound):
    votes = Votes()
    consultation = votes.vote(answers="a")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ballot.cast")
                               .order_by(AuditEvent.seq.desc())).first()
    payload = json.loads(event.payload)
    assert (event.actor_id, event.actor_label) == (None, audit.HOUSEHOLD_ACTOR)
    assert payload["channel"] == "online" and payload["consultation_id"] == consultation.id
    assert payload["cast_at"] == audit.format_time(votes.start + HOUR)


def test_nothing_before_the_vote_is_counted(client, login_as):
    votes = Votes()
    running = votes.vote(running=True)
    assert client.get(url(running)).status_code == 409
    login_as("admin")
    response = client.get(url(running), headers={"Accept-Language": "en"})
    assert response.status_code == 409 and "once the vote has been counted" in response.text


def test_ballots_of_a_round_still_running_stay_out(client, tmp_path):
    votes = Votes()
    consultation = votes.vote(answers="ddda")  # fails
    votes.close(consultation)
    later = consultation.vote_deadline + 3 * HOUR
    workflow.apply(consultation, Action.NEW_ROUND, votes.committee, reason="再议",
                   now=later - HOUR)
    service.update(votes.committee, consultation, service.settings(
        title=consultation.title, summary="", rule_code="household_majority", secrecy="open",
        locale="zh_Hans", solicitation_deadline=None, vote_deadline=utcnow() + 48 * HOUR,
        publicity_days=7, proxy_cap=2), now=later)
    workflow.apply(consultation, Action.OPEN_VOTE, votes.committee, now=later)
    votes.cast(consultation, "aa", later)
    text = client.get(url(consultation)).text
    data = json.loads(text)
    rounds = {json.loads(e["payload"])["round"] for e in data["events"]
              if e.get("object_type") == "ballot"}
    assert rounds == {1} and data["consultation"]["rounds_counted"] == [1]
    # The running round's ballots are in the chain, so they are listed, by their hash only.
    second = db.session.scalars(select(AuditEvent).where(
        AuditEvent.chain_id == consultation.id, AuditEvent.action == "ballot.cast")
        .order_by(AuditEvent.chain_seq.desc())).first()
    (listed,) = [e for e in data["events"] if e["chain_seq"] == second.chain_seq]
    assert listed == {"chain_id": consultation.id, "chain_seq": second.chain_seq,
                      "prev_hash": second.prev_hash, "hash": second.hash, "omitted": True}
    code, report = recount(text, tmp_path)  # the chain still follows from first to last
    assert code == 0, report["problems"]


def test_a_confidential_vote_of_owners_with_keys_is_public_and_recounts(client, runner,
                                                                         login_as, tmp_path):
    """Every household has an owner key (two flats per owner), the ballots are confidential:
    the export still downloads without signing in, and the recount, run by a Python of its
    own with the standard library only, reaches every published number and the tree root."""
    votes = Votes(owner_keys=True)
    consultation = votes.vote(secrecy="confidential", answers="aadadx")
    votes.close(consultation)
    response = client.get(url(consultation))
    assert response.status_code == 200, response.text
    code, report = recount(response.text, tmp_path)
    assert (code, report["problems"]) == (0, [])
    (mine,) = report["recounts"]
    frozen = json.loads(runner.invoke(args=["ballots", "tally", str(consultation.id),
                                            "--json"]).output)
    assert_same_numbers(mine, frozen)
    # Three owners of two flats each: counted once each.
    assert mine["roll"]["owners"] == 3 and mine["participation"]["owners"] == 3
    result = ballots.vote_result(consultation)
    assert mine["tree"] == {"root": result.tree_root, "size": 6}
    # Anyone else gets the same file: residents, other compounds' staff, supervisors.
    for role, compound in (("resident", None), ("committee", factories.make_compound("别处")),
                           ("supervisor", votes.compound)):
        if role == "resident":
            login_as(role, household=votes.households[1])
        else:
            login_as(role, compound=compound)
        assert client.get(url(consultation)).status_code == 200, role


def test_the_export_holds_no_receipt_and_no_owner_key(client):
    votes = Votes(owner_keys=True)
    consultation = votes.vote(secrecy="confidential", answers="aadadx")
    votes.close(consultation)
    text = client.get(url(consultation)).text
    data = json.loads(text)
    stored = [ballots.ballot_of(consultation, h.id) for h in votes.households]
    assert all(len(b.receipt) == 19 for b in stored)  # new receipts: 16 characters
    for ballot in stored:
        assert ballot.receipt not in text and ballot.receipt.replace("-", "") not in text
    for household in votes.households:
        key = household.owner_key
        assert key not in text
        # Nor the unkeyed token that could be tried against every ID number.
        assert records.legacy_owner_token(consultation.id, key) not in text
    assert consultation.owner_token_key not in text
    payloads = [json.loads(e["payload"]) for e in data["events"]
                if e["action"] in ("ballot.cast", "ballot.changed")]
    assert payloads and all("receipt" not in p and p["household_id"] is None for p in payloads)
    hashes = {p["receipt_hash"] for p in payloads}
    assert hashes == {records.receipt_hash(consultation.id, 1, b.receipt) for b in stored}
    # An owner's two flats carry one token, and the token is keyed: it is not what anyone
    # could compute from the owner key without the consultation's secret.
    tokens = [p["owner"] for p in payloads]
    assert len(set(tokens)) == 3
    assert tokens.count(ballots.owner_token(consultation, "证件0000")) == 2
    assert ballots.owner_token(consultation, "证件0000") != records.owner_token(
        "00" * 32, "证件0000")


def test_a_receipt_is_checked_offline_from_the_export(client, tmp_path):
    votes = Votes(owner_keys=True)
    consultation = votes.vote(secrecy="confidential", answers="aadadx")
    votes.close(consultation)
    body = client.get(url(consultation)).text
    mine = ballots.ballot_of(consultation, votes.households[2].id)
    typed = mine.receipt.lower().replace("-", " ")  # as a hurried hand types it
    code, report = recount(body, tmp_path, "--receipt", typed)
    assert (code, report["problems"]) == (0, [])
    (found,) = report["receipt"]
    assert found["proven"] is True and found["answers"] == {"1": "disagree"}
    assert found["root"] == ballots.vote_result(consultation).tree_root
    assert found["size"] == 6  # 4 + 2: a leaf among the first four has a longer path
    assert len(found["path"]) == (3 if found["index"] < 4 else 2)
    code, report = recount(body, tmp_path, "--receipt", "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    assert code == 1 and report["receipt"] == []
    assert any("no counted ballot" in p for p in report["problems"])


def test_ballot_events_written_before_receipts_were_hashed_are_exported_redacted(
        client, tmp_path):
    """A ballot event written before events recorded the receipt's hash names the receipt
    and an unkeyed owner token: the export replaces both, marks the event, and the recount
    says it cannot check its hash but still reaches the published numbers."""
    votes = Votes(owner_keys=True)
    consultation = votes.vote(secrecy="confidential")
    ballot = ballots.ballot_of(consultation, votes.households[3].id)
    latest = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "ballot", AuditEvent.object_id == str(ballot.id))).one()
    payload = json.loads(latest.payload)
    del payload["receipt_hash"]
    payload.update(receipt=ballot.receipt, version=2,
                   owner=records.legacy_owner_token(consultation.id, "证件0001"))
    ballot.version = 2
    legacy = audit.record(votes.committee, "ballot.changed", ballot, payload,
                          compound_id=votes.compound.id)
    assert audit.verify().ok  # the stored ballot agrees with its (older-format) event
    votes.close(consultation)
    text = client.get(url(consultation)).text
    assert ballot.receipt not in text and "证件" not in text
    (event,) = [e for e in json.loads(text)["events"] if e["seq"] == legacy.seq]
    assert event["redacted"] == ["receipt", "owner"]
    rewritten = json.loads(event["payload"])
    assert rewritten["receipt_hash"] == records.receipt_hash(consultation.id, 1, ballot.receipt)
    assert rewritten["owner"] == ballots.owner_token(consultation, "证件0001")
    code, report = recount(text, tmp_path)
    assert code == 1
    assert [p for p in report["problems"] if "cannot be hash-checked" not in p] == []
    assert report["recounts"][0]["tree"]["root"] == ballots.vote_result(consultation).tree_root


def test_events_written_by_a_residents_account_are_withheld(client, tmp_path):
    """Before online ballots stopped naming the household's account, their events did; such
    an event is exported without its actor, and the recount says it cannot check it."""
    votes = Votes()
    consultation = votes.vote()
    ballot = ballots.ballot_of(consultation, votes.households[2].id)
    latest = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "ballot", AuditEvent.object_id == str(ballot.id))).one()
    legacy = audit.record(votes.resident, "ballot.changed", ballot,
                          json.loads(latest.payload), compound_id=votes.compound.id)
    votes.close(consultation)
    text = client.get(url(consultation)).text
    assert votes.resident.username not in text
    (event,) = [e for e in json.loads(text)["events"] if e["seq"] == legacy.seq]
    assert event["withheld"] == ["actor_id", "actor_label"] and event["actor_label"] is None
    code, report = recount(text, tmp_path)
    assert code == 1 and any("withheld" in p for p in report["problems"])


def test_export_command(runner, tmp_path):
    votes = Votes()
    vote = votes.vote()
    votes.close(vote)
    whole = tmp_path / "chain.json"
    result = runner.invoke(args=["audit", "export", str(whole)], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 0 and "events to" in result.output
    data = json.loads(whole.read_text(encoding="utf-8"))
    assert data["scope"] == "chain"
    # Every chain whole, each up to its head.
    chains = {h["chain"]: (h["seq"], h["hash"]) for h in data["chain_heads"]}
    assert chains[0] == audit.chain_head() and set(chains) == {0, vote.id}
    for chain, (seq, _digest) in chains.items():
        assert [e["chain_seq"] for e in data["events"] if e["chain_id"] == chain] == list(
            range(1, seq + 1))
    assert len(data["events"]) == db.session.scalar(select(func.count(AuditEvent.seq)))
    missing = tmp_path / "none.json"
    result = runner.invoke(args=["audit", "export", "--consultation", "999999", str(missing)],
                           env={"CONSULT_LANG": "en"})
    assert result.exit_code == 1 and "No such consultation" in result.output
    assert not missing.exists()
