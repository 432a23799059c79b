"""Demo consultations for 劳动局家属院: one in every stage of the method, built through the real
services and workflow, with a believable timeline (the past is reached by passing ``now``).

Idempotent: a consultation whose title already exists in the compound is left as it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from consult import demo_followups as followups
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import discussion, meetings, opinions, service
from consult.consultations.models import Consultation
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.core.times import utc_to_local
from consult.extensions import db
from consult.implementation import service as works
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import printing, workflow
from consult.registry.models import Building, Compound, Household

DAY = timedelta(days=1)

# The twelve renovation tasks that 300+ suggestions turned into, as in a real sub-district.
RENOVATION_TASKS = [
    ("更换老化供水管网", "全部 6 栋楼的入户供水管更换为 PPR 管，消除漏水和水质问题。", "486000"),
    ("雨污分流改造", "新建雨水管道，污水接入市政管网，解决雨天返水。", "612000"),
    ("主干道路面硬化", "修复破损路面约 1,800 平方米，重新划线。", "298000"),
    ("架空线缆“蜘蛛网”整治", "通信、有线电视线缆入地或规整上墙，拆除废弃线缆。", "156000"),
    ("非机动车集中充电点", "建设 3 处集中充电棚（共 60 个充电口），杜绝“飞线充电”。", "138000"),
    ("楼栋公示栏更新", "每个单元入口设置不锈钢公示栏。", "27000"),
    ("门卫室翻新", "门卫室翻新，加装门禁和监控。", "85000"),
    ("消防设施补齐", "补齐楼道灭火器和应急照明，疏通消防通道。", "64000"),
    ("屋面防水维修", "对渗漏严重的 2、4、5 号楼屋面重做防水。", "220000"),
    ("楼道粉刷与照明", "楼道墙面粉刷，更换声控 LED 灯。", "96000"),
    ("绿化补植", "补植行道树和绿篱，增设 4 处休闲座椅。", "72000"),
    ("增设停车位", "利用边角空地增设 28 个停车位。", "118000"),
]

OPINIONS = [
    ("pipes", "自来水管老是漏，楼下邻居家天花板都泡了。"),
    ("pipes", "早上水压太低，六楼基本没水。"),
    ("roads", "进门那段路坑坑洼洼，老人走路容易摔。"),
    ("cables", "楼道口的电线像蜘蛛网，看着就危险。"),
    ("charging", "电动车只能从楼上拉线充电，太不安全了，希望建充电棚。"),
    ("charging", "充电棚最好离 3 号楼近一点。"), ("fire_safety", "楼道里的灭火器都过期了。"),
    ("security", "门卫晚上经常没人，外人随便进。"), ("lighting", "晚上楼道太黑，声控灯坏了好久。"),
    ("greenery", "希望多种几棵树，夏天能乘凉。"), ("parking", "车位太少，晚上回来没地方停。"),
    ("buildings", "顶楼下雨就漏水，墙皮都掉了。"), ("facilities", "希望每个单元门口都有公示栏。"),
    ("other", "建议改造期间提前通知停水停电时间。"),
]


def _household(compound: Compound, building: str, unit: str, room: str) -> Household:
    return db.session.scalars(select(Household).join(Household.building).where(
        Building.compound_id == compound.id, Building.name == building,
        Household.unit == unit, Household.room == room)).one()


def _households(consultation: Consultation) -> list[Household]:
    return list(db.session.scalars(ballots.households_in_scope(consultation).order_by(
        Household.id)))


def _new(actor: Any, compound: Compound, title: str, summary: str, rule: str = "household_majority",
         secrecy: str = "open", items: list[tuple[str, str, str]] | None = None,
         now: datetime | None = None) -> Consultation:
    consultation = service.create(actor, compound, service.settings(
        title=title, summary=summary, rule_code=rule, secrecy=secrecy, locale="zh_Hans",
        solicitation_deadline=None, vote_deadline=None, publicity_days=7, proxy_cap=3), now=now)
    for item_title, description, cost in items or []:
        service.add_item(actor, consultation, service.item_data(
            title=item_title, description=description, cost=cost))
    return consultation


def _to_discussion(consultation: Consultation, actor: Any, now: datetime) -> None:
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
        workflow.apply(consultation, action, actor, now=now)


def _vote(consultation: Consultation, actor: Any, opened: datetime, days: int,
          rng: random.Random, share: float, agree: float,
          skip: AbstractSet[int] = frozenset()) -> None:
    """Open the vote at ``opened`` and let a ``share`` of households vote, mostly agreeing."""
    consultation.vote_opens_at = opened
    consultation.vote_deadline = opened + days * DAY
    printing.issue_vote_notice(actor, consultation, now=opened - 7 * DAY)  # posted a week ahead
    workflow.apply(consultation, Action.OPEN_VOTE, actor, now=opened)
    channels = [BallotChannel.ONLINE] * 6 + [BallotChannel.PAPER] * 3 + [BallotChannel.DOOR_TO_DOOR]
    for n, household in enumerate(_households(consultation)):
        if household.id in skip or rng.random() > share:
            continue
        channel = rng.choice(channels)
        answers = {item.id: ("agree" if rng.random() < agree else
                             rng.choice(["disagree", "abstain"])) for item in consultation.items}
        ballots.cast(None if channel is BallotChannel.ONLINE else actor, consultation, household,
                     answers, channel, now=opened + timedelta(hours=2 + n),
                     serial=f"LDJ-{consultation.id:02d}-{n + 1:03d}"
                     if channel is BallotChannel.PAPER else None)


def _close_and_publish(consultation: Consultation, actor: Any) -> datetime:
    closed = consultation.vote_deadline
    if closed is None:
        raise RuntimeError("a demo vote is closed only after _vote opened it")
    workflow.apply(consultation, Action.CLOSE_VOTE, actor, now=closed + timedelta(minutes=5))
    workflow.apply(consultation, Action.PUBLISH_RESOLUTION, actor, now=closed + DAY)
    return closed + DAY


def _works(consultation: Consultation, actor: Any, supervisor: Any, start: datetime,
           finish: bool) -> datetime:
    workflow.apply(consultation, Action.START_IMPLEMENTATION, actor, now=start)
    items = works.implementable_items(consultation)
    works.add_progress(actor, consultation, works.progress_data(
        item_id=None, percent=35, spend="120000", note="施工单位进场，完成围挡和材料进场。",
        is_final=False), now=start + 5 * DAY)
    works.add_inspection(supervisor, consultation, "抽查管材合格证齐全，施工现场围挡规范。",
                         item_id=items[0].id if items else None, now=start + 8 * DAY)
    works.add_progress(actor, consultation, works.progress_data(
        item_id=None, percent=65, spend="95000", note="主体施工过半，夜间不施工。",
        is_final=False), now=start + 15 * DAY)
    if not finish:
        return start + 15 * DAY
    for item in items:
        works.complete_item(actor, item, item.estimated_cost_fen * 97 // 100,
                            "已完工并通过验收。", now=start + 25 * DAY)
    works.add_progress(actor, consultation, works.progress_data(
        item_id=None, percent=100, spend="60000", note="全部完工，组织居民代表验收。",
        is_final=True), now=start + 26 * DAY)
    published = start + 27 * DAY
    workflow.apply(consultation, Action.PUBLISH_RESULT, actor, now=published)
    return published


def _evaluate(consultation: Consultation, rng: random.Random, at: datetime, share: float,
              skip: set[int]) -> None:
    for household in _households(consultation):
        if household.id in skip or rng.random() > share:
            continue
        rating = rng.choices(["satisfied", "basically_satisfied", "dissatisfied"],
                             weights=[7, 2, 1])[0]
        works.evaluate(None, consultation, household, rating, now=at)


def seed_consultations(compound: Compound, committee: Any, supervisor: Any,
                       resident_home: Household) -> int:
    """Create whatever demo consultations are missing; returns how many were created."""
    now = utcnow()
    rng = random.Random(1949)
    existing = set(db.session.scalars(select(Consultation.title).where(
        Consultation.compound_id == compound.id)))
    mine = {resident_home.id}  # the demo resident still has something to do everywhere
    created = 0

    def story(title: str, build: Callable[[], None]) -> None:
        nonlocal created
        if title not in existing:
            build()
            created += 1

    def closed() -> None:
        c = _new(committee, compound, "小区路灯安装", "在主干道和楼间步道安装太阳能路灯。",
                 items=[("主干道路灯", "安装 24 盏太阳能路灯。", "96000"),
                        ("楼间步道照明", "安装 30 盏庭院灯。", "45000")], now=now - 150 * DAY)
        _to_discussion(c, committee, now - 140 * DAY)
        _vote(c, committee, now - 120 * DAY, 10, rng, 0.85, 0.9)
        published = _close_and_publish(c, committee)
        result = _works(c, committee, supervisor, published + 8 * DAY, finish=True)
        _evaluate(c, rng, result + DAY, 0.6, set())
        workflow.apply(c, Action.CLOSE, committee, now=result + 8 * DAY)

    def result_public() -> None:
        c = _new(committee, compound, "主干道路面硬化", "修复小区主干道和入口路面。",
                 items=[RENOVATION_TASKS[2]], now=now - 75 * DAY)
        _to_discussion(c, committee, now - 70 * DAY)
        _vote(c, committee, now - 66 * DAY, 10, rng, 0.8, 0.88, skip=mine)
        published = _close_and_publish(c, committee)
        # The result is published two days ago, so the households' evaluation is open now.
        _works(c, committee, supervisor, published + 8 * DAY, finish=False)
        for item in works.implementable_items(c):
            works.complete_item(committee, item, item.estimated_cost_fen - 1200000,
                                "完工验收合格，结余资金退回。", now=now - 4 * DAY)
        works.add_progress(committee, c, works.progress_data(
            item_id=None, percent=100, spend="75000", note="路面硬化全部完成。", is_final=True),
            now=now - 3 * DAY)
        workflow.apply(c, Action.PUBLISH_RESULT, committee, now=now - 2 * DAY)
        _evaluate(c, rng, now - DAY, 0.4, mine)
        followups.seed_defects(committee, supervisor, c, now)

    def implementing() -> None:
        c = _new(committee, compound, "雨污分流管网改造", "解决雨天污水返溢问题。",
                 items=[RENOVATION_TASKS[1]], now=now - 60 * DAY)
        _to_discussion(c, committee, now - 55 * DAY)
        _vote(c, committee, now - 50 * DAY, 10, rng, 0.82, 0.85)
        published = _close_and_publish(c, committee)
        _works(c, committee, supervisor, published + 8 * DAY, finish=False)

    def resolution_public() -> None:
        c = _new(committee, compound, "屋面防水维修",
                 "2、4、5 号楼屋面渗漏严重，使用维修资金重做防水。",
                 rule="civil_code_278_general", items=[RENOVATION_TASKS[8]], now=now - 30 * DAY)
        _to_discussion(c, committee, now - 25 * DAY)
        _vote(c, committee, now - 15 * DAY, 12, rng, 0.86, 0.8, skip=mine)
        _close_and_publish(c, committee)  # published two days ago
        notice = notices.current_notice(c, NoticeKind.RESOLUTION)
        if notice is None:
            raise RuntimeError("publishing the resolution issues its notice")
        objector = _household(compound, "2号楼", "1", "601")
        objection = notices.file_objection(None, notice, objector,
                                           "我家是顶楼，希望施工时注意保护太阳能热水器。",
                                           now=now - DAY)
        notices.answer_objection(committee, objection,
                                 "已要求施工单位施工前逐户确认，损坏照价赔偿。")

    def vote_counted() -> None:
        c = _new(committee, compound, "门卫室翻新和门禁系统", "翻新门卫室，加装门禁和监控。",
                 items=[RENOVATION_TASKS[6]], now=now - 26 * DAY)
        _to_discussion(c, committee, now - 21 * DAY)
        _vote(c, committee, now - 12 * DAY, 10, rng, 0.78, 0.82, skip=mine)
        # Closed and counted two days ago; the resolution notice is not published yet.
        assert c.vote_deadline is not None
        workflow.apply(c, Action.CLOSE_VOTE, committee, now=c.vote_deadline + timedelta(
            minutes=5))

    def vote_closed() -> None:
        c = _new(committee, compound, "单元入口公示栏更新", "每个单元入口设置不锈钢公示栏。",
                 rule="civil_code_278_general", items=[RENOVATION_TASKS[5]],
                 now=now - 22 * DAY)
        _to_discussion(c, committee, now - 18 * DAY)
        _vote(c, committee, now - 11 * DAY, 10, rng, 0.7, 0.85, skip=mine)
        assert c.vote_deadline is not None
        # Two paper ballots came in on the last day; each was entered once, and the second
        # entry (by another member) is still to come: the vote closed at its deadline
        # yesterday and is counted once both are settled.
        late = [h for h in _households(c)
                if h.id not in mine and ballots.ballot_of(c, h.id) is None][:2]
        for n, household in enumerate(late, start=1):
            entries.enter(committee, c, household, entries.Paper(
                BallotChannel.PAPER, {item.id: "agree" for item in c.items},
                serial=f"LDJ-{c.id:02d}-9{n:02d}"), now=c.vote_deadline - timedelta(hours=3))
        workflow.catch_up(c, now)

    def voting() -> None:
        c = _new(committee, compound, "1号楼1单元加装电梯",
                 "1 号楼 1 单元加装一部电梯，费用按楼层分摊（详见附件方案）。",
                 rule="civil_code_278_major", items=[
                     ("加装电梯", "在单元北侧加装一部 8 层停靠电梯。", "680000"),
                     ("费用分摊方案", "一层不出资，二至六层按 1:2:3:4:5 比例分摊。", "0")],
                 now=now - 20 * DAY)
        service.set_scope(committee, c, [(_household(compound, "1号楼", "1", "101").building_id,
                                          "1")])
        _to_discussion(c, committee, now - 15 * DAY)
        _vote(c, committee, now - 3 * DAY, 8, rng, 0.6, 0.8, skip=mine)

    def discussing() -> None:
        c = _new(committee, compound, "劳动局家属院综合改造方案（2027）",
                 "根据征集到的 300 多条意见，社区党组织和居委会提出 12 项改造任务，"
                 "现提交居民商议。", rule="household_two_thirds", now=now - 40 * DAY)
        workflow.apply(c, Action.START_SOLICITING, committee, now=now - 40 * DAY)
        voices = _households(c)
        made = []
        for n, (category, text) in enumerate(OPINIONS):
            made.append(opinions.submit(None, c, voices[(n * 7) % len(voices)],
                                        opinions.opinion_data(category=category, text=text)))
        for n, opinion in enumerate(made):
            for supporter in voices[n + 20:n + 20 + (n * 3) % 17]:
                if supporter.id != opinion.household_id:
                    opinions.support(None, opinion, supporter)
        workflow.apply(c, Action.START_PROPOSING, committee, now=now - 25 * DAY)
        by_category: dict[str, list[int]] = {}
        for opinion in made:
            by_category.setdefault(opinion.category, []).append(opinion.id)
        links = {0: "pipes", 1: "pipes", 2: "roads", 3: "cables", 4: "charging", 5: "facilities",
                 6: "security", 7: "fire_safety", 8: "buildings", 9: "lighting", 10: "greenery",
                 11: "parking"}
        for n, (title, description, cost) in enumerate(RENOVATION_TASKS):
            item = service.add_item(committee, c, service.item_data(
                title=title, description=description, cost=cost))
            opinions.set_item_opinions(committee, item, by_category.get(links[n], []))
        workflow.apply(c, Action.START_DISCUSSION, committee, now=now - 20 * DAY)
        charging = c.items[4]
        first = discussion.comment_as_household(None, charging, voices[3],
                                                "充电棚能不能加装灭火器和监控？")
        discussion.comment_as_committee(committee, charging, "可以，已写入修订方案。",
                                        parent_id=first.id)
        discussion.comment_as_household(None, c.items[0], voices[11],
                                        "换水管要入户施工，希望提前一周通知。")
        service.update_item(committee, charging, service.item_data(
            title=charging.title, description=charging.description
            + "每处充电棚配备灭火器和监控摄像头。", cost="152000"),
            note="根据居民意见增加消防和监控设施")
        meetings.record(committee, c, meetings.meeting_data(
            held_at_local=utc_to_local(now - 10 * DAY), place="社区党群服务中心二楼会议室",
            attendees={"community": "社区书记 王丽、居委会主任 李红梅",
                       "committee": "自管会 张志强、周淑珍",
                       "representatives": "各楼栋居民代表 12 人",
                       "contractors": "设计单位 刘工", "others": "街道城建科 陈科长"},
            minutes="逐项讨论 12 项改造任务。居民代表重点关注充电棚位置和供水管施工安排。",
            decisions="1. 充电棚增加消防和监控设施；\n2. 供水管施工前一周书面通知；\n"
                      "3. 方案修订后提交表决。"))

    def proposing() -> None:
        c = _new(committee, compound, "非机动车充电设施建设",
                 "在 2 号楼和 5 号楼之间建设集中充电棚。", now=now - 12 * DAY)
        workflow.apply(c, Action.START_SOLICITING, committee, now=now - 12 * DAY)
        workflow.apply(c, Action.START_PROPOSING, committee, now=now - 4 * DAY)
        service.add_item(committee, c, service.item_data(
            title="集中充电棚", description="共 40 个充电口，刷卡计费。", cost="98000"))

    def soliciting() -> None:
        c = _new(committee, compound, "2027 年小区环境提升意见征集",
                 "小区明年计划申请老旧小区改造资金，欢迎大家提出意见和建议。", now=now - 5 * DAY)
        c.solicitation_deadline = now + 14 * DAY
        workflow.apply(c, Action.START_SOLICITING, committee, now=now - 5 * DAY)
        voices = _households(c)
        for n, (category, text) in enumerate(OPINIONS[:6]):
            opinions.submit(None, c, voices[(n * 13 + 5) % len(voices)],
                            opinions.opinion_data(category=category, text=text))
        followups.seed_questionnaire(committee, c, voices, mine, rng)

    def draft() -> None:
        _new(committee, compound, "楼道照明节能改造", "楼道灯全部更换为声控 LED 灯。",
             items=[RENOVATION_TASKS[9]], now=now - DAY)

    def withdrawn() -> None:
        c = _new(committee, compound, "小区内临时停车收费", "对外来车辆临时停车收费。",
                 now=now - 90 * DAY)
        workflow.apply(c, Action.START_SOLICITING, committee, now=now - 90 * DAY)
        workflow.apply(c, Action.WITHDRAW, committee, "征集期间多数意见反对收费，暂不推进。",
                       now=now - 80 * DAY)

    for title, build in (("小区路灯安装", closed), ("主干道路面硬化", result_public),
                         ("雨污分流管网改造", implementing), ("屋面防水维修", resolution_public),
                         ("门卫室翻新和门禁系统", vote_counted),
                         ("单元入口公示栏更新", vote_closed),
                         ("1号楼1单元加装电梯", voting),
                         ("劳动局家属院综合改造方案（2027）", discussing),
                         ("非机动车充电设施建设", proposing),
                         ("2027 年小区环境提升意见征集", soliciting),
                         ("楼道照明节能改造", draft), ("小区内临时停车收费", withdrawn)):
        story(title, build)
    return created
