"""问卷: the builder is the committee's; households answer for themselves; those who record
offline opinions print the sheets and type in paper answers; staff in scope read the results
and the export."""

from typing import Any

from consult.consultations.models import Consultation
from consult.consultations.questionnaire_models import (
    Answer,
    Question,
    Questionnaire,
    QuestionnaireResponse,
)
from consult.core.models import utcnow
from consult.extensions import db
from tests.access import EDITORS, EXPECTED, READERS, RECORDERS, RESIDENT, WORLD_BUILDERS

EXPECTED.update({
    "consultations.questionnaire_build": ("GET", EDITORS),
    "consultations.questionnaire_question_add": ("POST", EDITORS),
    "consultations.questionnaire_question": ("GET", EDITORS),
    "consultations.questionnaire_question_remove": ("POST", EDITORS),
    "consultations.questionnaire_question_move": ("POST", EDITORS),
    "consultations.questionnaire_publish": ("POST", EDITORS),
    "consultations.questionnaire_answer": ("GET", RESIDENT),
    "consultations.questionnaire_paper_find": ("GET", RECORDERS),
    "consultations.questionnaire_paper": ("GET", RECORDERS),
    "consultations.questionnaire_sheets": ("GET", RECORDERS),
    "consultations.questionnaire_results": ("GET", READERS),
    "consultations.questionnaire_take_up": ("POST", EDITORS),
    "consultations.questionnaire_export": ("GET", READERS),
})


def build(world: dict[str, Any]) -> None:
    """A published questionnaire of the world's consultation, with one household's answer.

    Written directly: the world's consultation is voting, past the stage in which the service
    builds questionnaires, and the pages show it closed."""
    consultation = db.session.get(Consultation, world["consultation_id"])
    assert consultation is not None
    questionnaire = Questionnaire(consultation_id=consultation.id, title="服务需求调查问卷",
                                  intro="", published_at=utcnow())
    db.session.add(questionnaire)
    db.session.flush()
    question = Question(questionnaire_id=questionnaire.id, position=1, kind="text",
                        text="其他建议", required=False)
    db.session.add(question)
    db.session.flush()
    response = QuestionnaireResponse(questionnaire_id=questionnaire.id,
                                     household_id=world["household_id"], channel="online")
    db.session.add(response)
    db.session.flush()
    answer = Answer(response_id=response.id, question_id=question.id, value="加装路灯")
    db.session.add(answer)
    db.session.flush()
    world.update(question_id=question.id, answer_id=answer.id)


WORLD_BUILDERS.append(build)
