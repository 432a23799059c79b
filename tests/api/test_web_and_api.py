"""A household votes on the web, changes its ballot through the API, then on the web again:
one current ballot, the last one counts, and the audit chain holds."""

import re

from sqlalchemy import func, select

from consult.audit import service as audit
from consult.ballots import service as ballots
from consult.ballots.models import Ballot
from consult.extensions import db
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def web_vote(client, c, *values):
    fields = {f"item_{item.id}": v for item, v in zip(c.items, values, strict=True)}
    review = client.post(f"/consultations/{c.id}/vote", data=fields)
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text).group(1)
    r = client.post(f"/consultations/{c.id}/vote/confirm", data={**fields, "submission": token})
    assert r.status_code == 302


def item_counts(c):
    return [item["counts"] for item in ballots.current_tally(c)["items"]]


def test_web_then_api_then_web(client, login_as, voting, compound):
    household = compound.buildings[0].households[0]
    user = login_as("resident", household=household)
    web_vote(client, voting, "agree", "agree")
    headers = bearer(user, **{"Idempotency-Key": "turn-0000000001"})
    body = {"choices": [{"item_id": item.id, "choice": "disagree"} for item in voting.items]}
    r = client.put(f"/api/v1/consultations/{voting.id}/ballot", json=body, headers=headers)
    assert r.status_code == 200 and r.json["ballot"]["version"] == 2
    # The web shows what the API cast.
    page = client.get(f"/consultations/{voting.id}/ballot")
    assert r.json["ballot"]["receipt"] in page.text
    assert item_counts(voting)[0].get("disagree") == 1
    web_vote(client, voting, "abstain", "agree")
    assert db.session.scalar(select(func.count(Ballot.id)).where(
        Ballot.household_id == household.id)) == 1
    ballot = ballots.ballot_of(voting, household.id)
    assert ballot.version == 3
    assert {c.choice for c in ballot.choices} == {"abstain", "agree"}
    counts = item_counts(voting)
    assert counts[0].get("abstain") == 1 and not counts[0].get("disagree")
    assert counts[1].get("agree") == 1
    api_view = client.get(f"/api/v1/consultations/{voting.id}/ballot",
                          headers=bearer(user)).json
    assert api_view["ballot"]["version"] == 3
    assert [c["choice"] for c in api_view["ballot"]["choices"]] == ["abstain", "agree"]
    assert audit_actions().count("ballot.changed") == 2
    assert audit.verify().ok
