"""The household's rating of the finished works through the API: given and changed while the
result notice is up, with the page's checks; refused before, elsewhere and by role."""

from consult.extensions import db
from consult.implementation import service
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions
from tests.feedback.conftest import finish


def test_rate_and_change(client, compound, resident):
    c = factories.make_consultation(compound)
    finish(c)
    db.session.commit()
    url = f"/api/v1/consultations/{c.id}/evaluation"
    headers = bearer(resident)
    before = client.get(url, headers=headers)
    assert before.status_code == 200, before.json
    assert before.json["open"] is True and before.json["rating"] is None
    assert [r["value"] for r in before.json["ratings"]] == [
        "satisfied", "basically_satisfied", "dissatisfied"]
    bad = client.put(url, json={"rating": "great"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json["error"]["errors"] == {"rating": ["Choose how satisfied you are."]}
    rated = client.put(url, json={"rating": "basically_satisfied", "comment": "噪音大"},
                       headers=headers)
    assert rated.status_code == 200, rated.json
    assert (rated.json["rating"], rated.json["comment"]) == ("basically_satisfied", "噪音大")
    changed = client.put(url, json={"rating": "satisfied"}, headers=headers)
    assert changed.json["rating"] == "satisfied" and changed.json["comment"] == ""
    assert service.evaluation_of(c, resident.household).rating == "satisfied"
    actions = audit_actions()
    assert "implementation.evaluated" in actions
    assert "implementation.evaluation_changed" in actions
    # The neighbour's is its own.
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    assert client.get(url, headers=bearer(neighbour)).json["rating"] is None


def test_refused_before_elsewhere_and_by_role(client, compound, resident, voting):
    url = f"/api/v1/consultations/{voting.id}/evaluation"
    early = client.put(url, json={"rating": "satisfied"}, headers=bearer(resident))
    assert early.status_code == 409 and early.json["error"]["code"] == "conflict"
    assert client.get(url, headers=bearer(resident)).json["open"] is False
    other = factories.make_compound_with_households(per_building=1)
    stranger = factories.make_user("resident", household=other.buildings[0].households[0])
    assert client.put(url, json={"rating": "satisfied"},
                      headers=bearer(stranger)).status_code == 403
    committee = factories.make_user("committee", compound=compound)
    assert client.get(url, headers=bearer(committee)).status_code == 403
    assert client.get(url).status_code == 401
