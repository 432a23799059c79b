"""The world the browser tests act in: the demo data (``flask demo seed``) plus what the flows
need that the demo cannot promise, made through the app's own services on the live server.

``WORLD`` runs once per session in the server's app context (``LiveServer.python``) and returns
the ids the tests navigate to, so no test guesses an id or depends on another test's leftovers.
"""

from __future__ import annotations

from typing import Any, TypedDict

# Each flow gets its own households, so the flows and the accessibility pages can run in any
# order: the residents of the access-code flows (and the households whose ballots the
# committee corrects or enters from files) are households of the demo's lift vote that have
# neither an account nor a ballot; the committee's vote happens in a small compound of its
# own, where every household can be entered by hand and the vote closed before its deadline.
WORLD = """
from flask_babel import force_locale
from sqlalchemy import select
from consult.accounts import service as accounts
from consult.accounts.models import User
from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import Ballot
from consult.consultations import service
from consult.process import workflow
from consult.consultations.models import Consultation
from consult.consultations.states import Action
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind
from consult.ballots.models import Visit, VisitList
from consult.registry import service as registry
from consult.registry.models import Compound

def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()

admin, committee, supervisor, resident = (user(n) for n in (
    "admin", "committee", "supervisor", "resident"))
demo = db.session.scalars(select(Compound).where(Compound.name == "劳动局家属院")).one()
stages = {c.stage: c for c in db.session.scalars(
    select(Consultation).where(Consultation.compound_id == demo.id))}

# The access-code residents: in the lift vote's scope, no account, no ballot yet.
voting = stages["voting"]
voted = set(db.session.scalars(select(Ballot.household_id).where(
    Ballot.consultation_id == voting.id)))
with_account = set(db.session.scalars(select(User.household_id).where(
    User.household_id.is_not(None))))
candidates = [h for h in db.session.scalars(ballots.households_in_scope(voting))
              if h.id not in voted | with_account]
newcomers = candidates[:5]
# The phone tests of the vote page (test_vote_phone.py) get a compound of their own with an
# open vote: the lift vote's roll has no household to spare. Its two households never send;
# a household of the opinion collection outside the vote gives and withdraws an opinion.
# The last two get paper ballots entered from files, twice (the lift vote is decided by a
# Civil Code rule); a second committee member decides where the two entries differ.
newcomers, paper_homes = newcomers[:3], newcomers[3:]
decider = accounts.create_user(admin, username="committee2", display_name="居委会 周敏",
                               role="committee", password="demo-committee2-2026")
accounts.add_scope(admin, decider, compound=demo)
codes = [accounts.format_code(accounts.issue_access_code(admin, h)) for h in newcomers]
with force_locale("zh_Hans"):  # as the resident's phone shows it
    labels = [str(h.label) for h in newcomers]

# The committee's own small compound: three households, a proposal of two items under
# discussion and no vote deadline yet (the committee sets it on the settings page).
community = demo.community
small = registry.create_compound(admin, community, "供电所宿舍", "建设路 90 号")
building = registry.create_building(admin, small, "1号楼")
homes = [registry.create_household(admin, building, registry.household_data(
    unit="1", floor=str(floor), room=room, area=area, owner_name=owner, owner_key=None,
    phone=None)) for floor, room, area, owner in (
        (1, "101", "62.40", "赵桂兰"), (1, "102", "58.75", "钱国庆"),
        (2, "201", "62.40", "孙丽华"))]
for staff in (committee, supervisor):
    accounts.add_scope(admin, staff, compound=small)
gate = service.create(committee, small, service.settings(
    title="单元门禁和楼道照明改造", summary="更换单元门禁，楼道换装声控 LED 灯。",
    rule_code="household_majority", secrecy="open", locale="zh_Hans",
    solicitation_deadline=None, vote_deadline=None, publicity_days=7, proxy_cap=None))
for title, description, cost in (("更换单元门禁", "可视对讲门禁一套。", "36000"),
                                 ("楼道声控照明", "三层楼道换装声控 LED 灯。", "8000")):
    service.add_item(committee, gate, service.item_data(
        title=title, description=description, cost=cost))
for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
    workflow.apply(gate, action, committee)
# Two more proposals of the small compound under discussion, with a vote deadline a week
# ahead: one whose vote the committee opens through the confirmation page, one whose item is
# being edited while another member opens the vote.
from datetime import timedelta
from consult.core.models import utcnow
confirm = {}
for key, title in (("open", "自行车棚改造"), ("conflict", "绿化补种")):
    proposal = service.create(committee, small, service.settings(
        title=title, summary="居民议事。", rule_code="household_majority", secrecy="open",
        locale="zh_Hans", solicitation_deadline=None,
        vote_deadline=(utcnow() + timedelta(days=7)).replace(second=0, microsecond=0),
        publicity_days=7, proxy_cap=None))
    for item_title, cost in (("拆除旧棚", "3000"), ("新建雨棚", "12000")):
        service.add_item(committee, proposal, service.item_data(
            title=item_title, description="说明。", cost=cost))
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
        workflow.apply(proposal, action, committee)
    confirm[key] = {"consultation": proposal.id, "title": proposal.title,
                    "items": [i.id for i in proposal.items]}
db.session.commit()

# Paper ballots entered at speed (test_paper_entry.py): a compound of its own whose vote is
# open, two buildings of three households each, the middle one of each voted online, so
# "save and go to the next household without a ballot" has one to pass over. The desktop
# enters in 5号楼, the phone in 6号楼 (the end of the roll).
from datetime import timedelta
from consult.ballots.models import BallotChannel
from consult.core.models import utcnow
depot = registry.create_compound(admin, community, "粮站宿舍", "建设路 92 号")
depot_homes = {}
for building_name in ("5号楼", "6号楼"):
    depot_building = registry.create_building(admin, depot, building_name)
    for floor, room, owner in ((1, "101", "周"), (1, "102", "吴"), (2, "201", "郑")):
        depot_homes[building_name, room] = registry.create_household(
            admin, depot_building, registry.household_data(
                unit="1", floor=str(floor), room=room, area="60.00",
                owner_name=owner + building_name[0], owner_key=None, phone=None))
accounts.add_scope(admin, committee, compound=depot)
# A proposal of ``items`` in ``compound`` whose vote is open for a week.
def open_vote(compound, title, summary, items, description, cost):
    proposal = service.create(committee, compound, service.settings(
        title=title, summary=summary, rule_code="household_majority", secrecy="open",
        locale="zh_Hans", solicitation_deadline=None,
        vote_deadline=utcnow() + timedelta(days=7), publicity_days=7, proxy_cap=None,
        double_entry=False))
    for item_title in items:
        service.add_item(committee, proposal, service.item_data(
            title=item_title, description=description, cost=cost))
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION,
                   Action.OPEN_VOTE):
        workflow.apply(proposal, action, committee)
    return proposal


roof = open_vote(depot, "屋面防水维修", "两栋楼屋面重做防水层。",
                 ("5号楼屋面防水", "6号楼屋面防水"), "重做防水层。", "20000")
for building_name in ("5号楼", "6号楼"):
    ballots.cast(None, roof, depot_homes[building_name, "102"],
                 {item.id: "agree" for item in roof.items}, BallotChannel.ONLINE)
db.session.commit()

lane = registry.create_compound(admin, community, "邮电新村", "解放路 15 号")
lane_building = registry.create_building(admin, lane, "9号楼")
lane_homes = [registry.create_household(admin, lane_building, registry.household_data(
    unit="1", floor="1", room=room, area="70.00", owner_name=owner, owner_key=None, phone=None))
    for room, owner in (("101", "冯九"), ("102", "陈九"))]
accounts.add_scope(admin, committee, compound=lane)
lane_vote = open_vote(lane, "楼道扶手加装", "每层加装扶手。", ("一层扶手", "二层扶手"),
                      "不锈钢扶手。", "3000")
in_vote = set(db.session.scalars(select(Ballot.household_id).where(
    Ballot.consultation_id == voting.id))) | {h.id for h in newcomers} | {
    h.id for h in paper_homes}
with_account = set(db.session.scalars(select(User.household_id).where(
    User.household_id.is_not(None))))
writer = [h for h in db.session.scalars(ballots.households_in_scope(stages["soliciting"]))
          if h.id not in in_vote | with_account][-1:]
phone = {"voting": lane_vote.id, "items": [i.title for i in lane_vote.items],
         **dict(zip(("normal", "large", "opinion"), (
             accounts.format_code(accounts.issue_access_code(admin, h))
             for h in [*lane_homes, *writer]), strict=True))}
db.session.commit()

resolution = notices.current_notice(stages["resolution_public"], NoticeKind.RESOLUTION)
result_notice = notices.current_notice(stages["result_public"], NoticeKind.RESULT)
from consult.feedback.models import DefectReport
defect_report = db.session.scalars(select(DefectReport).where(
    DefectReport.consultation_id == stages["result_public"].id,
    DefectReport.state == "fixed")).one()
committee_step = db.session.scalars(select(AuditEvent).where(
    AuditEvent.action == "consultation.stage_changed", AuditEvent.actor_id == committee.id,
    AuditEvent.compound_id == demo.id).order_by(AuditEvent.seq.desc()).limit(1)).one()
# The demo's published scoring ranking and its follow-up visit list.
ranking = db.session.scalars(select(Notice).where(Notice.kind == NoticeKind.RANKING.value)).first()
visit_list = db.session.scalars(select(VisitList).order_by(VisitList.id)).first()
result = {
    "ranking_notice": ranking.id,
    "scoring_round": ranking.scoring_round_id,
    "visit_list": visit_list.id,
    "visit_consultation": visit_list.consultation_id,
    "visit": db.session.scalars(select(Visit.id).where(Visit.visit_list_id == visit_list.id)
                                .order_by(Visit.id)).first(),
    "compound": demo.id,
    "stages": {stage: c.id for stage, c in stages.items()},
    "voting_items": [item.title for item in voting.items],
    "discussing_item": stages["discussing"].items[0].id,
    "resident_household": resident.household_id,
    "resolution_notice": resolution.id,
    "resolution_code": resolution.verify_code,
    # A receipt counted in the closed vote, as a household would type it on the proof page.
    "counted_receipt": db.session.scalars(select(Ballot.receipt).where(
        Ballot.consultation_id == stages["vote_counted"].id).order_by(Ballot.id)).first(),
    "result_notice": result_notice.id,
    "defect_report": defect_report.id,
    "audit_event": committee_step.seq,
    # The second one votes with JavaScript switched off; the committee corrects the third's.
    **{key: {"code": code, "household": h.id, "label": label} for key, code, h, label in zip(
        ("newcomer", "no_script", "corrected"), codes, newcomers, labels, strict=True)},
    "paper": [{"household": h.id, "building": h.building.name, "unit": h.unit, "room": h.room}
              for h in paper_homes],
    "phone": phone,
    "small": {"compound": small.id, "consultation": gate.id, "title": gate.title,
              "households": [h.id for h in homes], "items": [i.title for i in gate.items]},
    "confirm": confirm,
    "paper_entry": {"consultation": roof.id, "items": [i.title for i in roof.items],
                    "households": {f"{b}-{r}": h.id for (b, r), h in depot_homes.items()}},
}
"""


class Newcomer(TypedDict):
    code: str
    household: int
    label: str


class Small(TypedDict):
    compound: int
    consultation: int
    title: str
    households: list[int]
    items: list[str]


class Proposal(TypedDict):
    consultation: int
    title: str
    items: list[int]


class PaperHome(TypedDict):
    household: int
    building: str
    unit: str
    room: str


class PaperEntry(TypedDict):
    consultation: int
    items: list[str]
    households: dict[str, int]  # "5号楼-101" → household id


class World(TypedDict):
    """What ``WORLD`` returns."""

    compound: int
    stages: dict[str, int]
    voting_items: list[str]
    discussing_item: int
    resident_household: int
    resolution_notice: int
    resolution_code: str
    counted_receipt: str
    result_notice: int
    defect_report: int
    audit_event: int
    newcomer: Newcomer
    no_script: Newcomer
    corrected: Newcomer
    paper: list[PaperHome]
    small: Small
    phone: dict[str, Any]
    confirm: dict[str, Proposal]
    paper_entry: PaperEntry


def build(server: Any) -> World:
    """Run ``WORLD`` on the live server (after ``demo seed``)."""
    return server.python(WORLD)  # type: ignore[no-any-return]
