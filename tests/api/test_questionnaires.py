"""The questionnaire through the API: questions and choices, the household's answers given
and changed while opinions are collected, the answer page's messages per question, closed
afterwards; another household's answers are never shown, a compound not concerned is refused."""

from consult.consultations import questionnaires as service
from consult.consultations.states import Action
from consult.extensions import db
from consult.process import workflow
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions
from tests.questionnaires.helpers import build


def test_answer_change_and_close(client, compound, resident):
    c = factories.make_consultation(compound, stage="soliciting")
    q = build(c)
    db.session.commit()
    single, multiple, rating, text = (str(x.id) for x in q.questions)
    url = f"/api/v1/consultations/{c.id}/questionnaire"
    headers = bearer(resident)
    shown = client.get(url, headers=headers)
    assert shown.status_code == 200, shown.json
    assert shown.json["open"] is True and shown.json["answers"] == {}
    assert [x["kind"] for x in shown.json["questions"]] == ["single", "multiple", "rating",
                                                             "text"]
    assert shown.json["questions"][0]["choices"] == ["1人", "2人", "3人及以上"]
    missing = client.put(f"{url}/answers", json={"answers": {multiple: [9]}}, headers=headers)
    assert missing.status_code == 400
    errors = missing.json["error"]["errors"]
    assert errors == {f"answers.{single}": ["Please choose an answer to this question."],
                      f"answers.{multiple}": ["Choose among the answers shown."],
                      f"answers.{rating}": ["Please choose an answer to this question."]}
    unknown = client.put(f"{url}/answers", json={"answers": {"999999": 1}}, headers=headers)
    assert "answers.999999" in unknown.json["error"]["errors"]
    wrong_shape = client.put(f"{url}/answers", json={"answers": {single: {"a": 1}}},
                             headers=headers)
    assert wrong_shape.status_code == 400
    given = client.put(f"{url}/answers", json={"answers": {
        single: 1, multiple: [2, 0], rating: 4, text: "多装路灯"}}, headers=headers)
    assert given.status_code == 200, given.json
    assert given.json["answers"] == {single: 1, multiple: [0, 2], rating: 4, text: "多装路灯"}
    assert given.json["channel"] == "online"
    changed = client.put(f"{url}/answers", json={"answers": {single: 0, rating: 5}},
                         headers=headers)
    assert changed.json["answers"] == {single: 0, rating: 5}
    assert audit_actions().count("questionnaire.answered") == 2
    # Another household sees its own (none), never these.
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    assert client.get(url, headers=bearer(neighbour)).json["answers"] == {}
    workflow.apply(c, Action.START_PROPOSING, None)
    db.session.commit()
    assert client.get(url, headers=headers).json["open"] is False
    closed = client.put(f"{url}/answers", json={"answers": {single: 2, rating: 1}},
                        headers=headers)
    assert closed.status_code == 409
    assert service.stored_values(service.response_of(q, resident.household))[
        int(single)] == "0"


def test_refused_elsewhere_by_role_and_before_publishing(client, compound, resident):
    c = factories.make_consultation(compound, stage="soliciting")
    build(c, publish=False)
    db.session.commit()
    url = f"/api/v1/consultations/{c.id}/questionnaire"
    assert client.get(url, headers=bearer(resident)).status_code == 404
    other = factories.make_compound_with_households(per_building=1)
    stranger = factories.make_user("resident", household=other.buildings[0].households[0])
    assert client.get(url, headers=bearer(stranger)).status_code == 403
    committee = factories.make_user("committee", compound=compound)
    assert client.get(url, headers=bearer(committee)).status_code == 403
    assert client.put(f"{url}/answers", json={"answers": {}},
                      headers=bearer(committee)).status_code == 403
    assert client.get(url).status_code == 401
