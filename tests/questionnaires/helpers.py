"""A small questionnaire used by the questionnaire tests: one question of each kind."""

from __future__ import annotations

from typing import Any

from consult.consultations import questionnaires as service


def build(consultation: Any, *, publish: bool = True) -> Any:
    """The service-needs questionnaire: single (required), multiple, rating (required), text."""
    questionnaire = service.save_heading(None, consultation, "服务需求调查问卷",
                                         "请每户填写一份。")
    for kind, text, required, choices in (
            ("single", "您家常住几口人？", True, "1人\n2人\n3人及以上"),
            ("multiple", "最希望改造哪些方面？", False, "水管\n路面\n飞线充电\n公告栏"),
            ("rating", "您对小区现状满意吗？", True, ""),
            ("text", "其他建议", False, "")):
        service.add_question(None, questionnaire, service.question_data(
            kind=kind, text=text, required=required, choices=choices))
    if publish:
        service.publish(None, questionnaire)
    return questionnaire


def answers(questionnaire: Any, single: int = 0, multiple: tuple[int, ...] = (),
            rating: int = 3, text: str = "") -> dict[int, str]:
    """Stored answers for ``build``'s questions, parsed like a form's."""
    single_q, multiple_q, rating_q, text_q = questionnaire.questions
    form: dict[str, list[str]] = {
        service.field_name(single_q): [str(single)],
        service.field_name(multiple_q): [str(m) for m in multiple],
        service.field_name(rating_q): [str(rating)],
        service.field_name(text_q): [text] if text else [],
    }
    return service.parse_answers(questionnaire, lambda name: form.get(name, []))
