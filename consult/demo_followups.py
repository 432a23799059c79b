"""Demo data for what follows the works and what accompanies the collection of opinions: a
published questionnaire with answers, and defect reports in their different states.

Built through the services, like the rest of the demo, so the audit trail tells it too.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from PIL import Image
from werkzeug.datastructures import FileStorage

from consult.consultations import questionnaires
from consult.consultations.models import Consultation
from consult.feedback import service as feedback
from consult.registry.models import Household

DAY = timedelta(days=1)

# (kind, question, choices, required) of a service-needs questionnaire (服务需求调查问卷).
QUESTIONS = [
    ("single", "您家常住几口人？", "1 人\n2 人\n3 人\n4 人及以上", True),
    ("multiple", "您最希望改造哪些方面？（可多选）",
     "屋面防水\n楼道照明\n加装电梯\n非机动车充电\n绿化和休闲设施\n停车位", True),
    ("rating", "您对小区目前的居住环境满意吗？", "", True),
    ("text", "您还有什么意见或建议？", "", False),
]
SUGGESTIONS = ["楼道灯坏了很久，晚上上下楼不安全。", "希望集中建一个充电棚，不要飞线充电。",
               "老人多，希望能加装扶手。", "", ""]


def seed_questionnaire(committee: Any, consultation: Consultation,
                       households: list[Household], skip: set[int],
                       rng: random.Random) -> None:
    """A published questionnaire that about half of the households answered online."""
    found = questionnaires.save_heading(committee, consultation, "服务需求调查问卷",
                                        "请每户填写一份，约需 3 分钟。您的回答只用于本次改造。")
    for kind, text, choices, required in QUESTIONS:
        questionnaires.add_question(committee, found, questionnaires.question_data(
            kind=kind, text=text, required=required, choices=choices))
    questionnaires.publish(committee, found)
    for household in households[::2]:
        if household.id in skip:
            continue
        picked = {
            questionnaires.field_name(q): _pick(q.kind, len(questionnaires.choices_of(q)), rng)
            for q in found.questions}
        answers = questionnaires.parse_answers(found, partial(_values, picked))
        questionnaires.answer_online(None, found, household, answers)


def _values(picked: dict[str, list[str]], name: str) -> list[str]:
    return picked.get(name, [])


def _pick(kind: str, choices: int, rng: random.Random) -> list[str]:
    if kind == "single":
        return [str(rng.randrange(choices))]
    if kind == "multiple":
        return [str(n) for n in rng.sample(range(choices), rng.randint(1, 3))]
    if kind == "rating":
        return [str(rng.choices(range(1, 6), weights=[1, 2, 4, 5, 3])[0])]
    return [rng.choice(SUGGESTIONS)]


def _photo(color: str) -> FileStorage:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), color).save(buffer, format="PNG")
    buffer.seek(0)
    return FileStorage(stream=buffer, filename="photo.png", content_type="image/png")


def seed_defects(committee: Any, supervisor: Any, consultation: Consultation,
                 now: datetime) -> None:
    """Three reports on finished works: fixed, being fixed and just reported."""
    item = feedback.finished_items(consultation)[0]
    buildings = feedback.buildings_of(consultation)

    def report(text: str, building: int) -> Any:
        return feedback.report(supervisor, consultation, feedback.ReportInput(
            item_id=item.id, building_id=buildings[building % len(buildings)].id, text=text),
            now=now - DAY)

    fixed = report("3 号楼门口新修的路面裂了一条缝，约两米长，下雨后积水。", 2)
    feedback.move(fixed, "accept", committee, now=now - DAY)
    feedback.move(fixed, "assign", committee, assignee="市政道路维修队",
                  due_on=(now + 5 * DAY).date(), now=now - DAY)
    feedback.move(fixed, "mark_fixed", committee, note="已切除开裂部分并重新浇筑，养护 3 天。",
                  photo=_photo("#6b8e23"), now=now)
    assigned = report("小区入口减速带松动，车辆经过时响声很大。", 0)
    feedback.move(assigned, "accept", committee, now=now)
    feedback.move(assigned, "assign", committee, assignee="原施工单位",
                  due_on=(now + 7 * DAY).date(), now=now)
    report("1 号楼前的雨水篦子被压坏了。", 1)
