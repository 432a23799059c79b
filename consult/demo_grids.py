"""Demo street office: 解放街道 with two communities, four grids and a dozen compounds at
different stages, and a grid worker's account.

The two demo compounds of ``consult.demo`` are joined by ten small ones (a few households
each, so seeding stays fast). Grids are put in place by the real grid import, from a file, as
an office would; consultations are built with the demo helpers, through the real services and
workflow. Idempotent: what exists is found and left as it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from consult.accounts import service as accounts
from consult.consultations import opinions
from consult.consultations.models import Consultation
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.core.tabular import write_csv
from consult.demo_consultations import (
    DAY,
    OPINIONS,
    RENOVATION_TASKS,
    _close_and_publish,
    _evaluate,
    _households,
    _new,
    _to_discussion,
    _vote,
    _works,
)
from consult.extensions import db
from consult.process import workflow
from consult.registry import grids
from consult.registry import service as registry
from consult.registry.models import Building, Community, Compound, Grid, Household

STREET_OFFICE = "解放街道"
JIANSHE, GUANGMING = "建设路社区", "光明社区"


@dataclass(frozen=True)
class SmallCompound:
    community: str
    grid: str
    name: str
    address: str
    buildings: int  # one unit, four floors, two flats a floor each


# The two compounds of consult.demo come first; the ten small ones after them.
GRID_OF_DEMO_COMPOUNDS = ((JIANSHE, "第一网格", "劳动局家属院"),
                          (GUANGMING, "第三网格", "纺织厂宿舍"))
SMALL_COMPOUNDS = (
    SmallCompound(JIANSHE, "第一网格", "粮食局宿舍", "建设路 90 号", 2),
    SmallCompound(JIANSHE, "第一网格", "邮电小区", "建设路 102 号", 1),
    SmallCompound(JIANSHE, "第二网格", "供销社家属院", "人民路 15 号", 2),
    SmallCompound(JIANSHE, "第二网格", "农机厂宿舍", "人民路 21 号", 1),
    SmallCompound(JIANSHE, "第二网格", "税务局小区", "人民路 33 号", 2),
    SmallCompound(GUANGMING, "第三网格", "棉纺二厂家属院", "光明巷 20 号", 2),
    SmallCompound(GUANGMING, "第三网格", "电业局宿舍", "光明巷 31 号", 1),
    SmallCompound(GUANGMING, "第四网格", "卫生院家属楼", "东风路 8 号", 1),
    SmallCompound(GUANGMING, "第四网格", "交通局小区", "东风路 17 号", 2),
    SmallCompound(GUANGMING, "第四网格", "老邮局楼院", "东风路 26 号", 1),
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯"
GIVEN = ("建国", "秀英", "桂兰", "志强", "玉兰", "淑珍", "国庆", "建华", "丽华", "红梅",
         "永刚", "春花", "德明", "素芬", "海燕", "卫东")
# The grid the demo grid worker looks after.
DEMO_GRID = (JIANSHE, "第一网格")


def _small_rows(spec: SmallCompound, seed: int) -> list[list[str]]:
    """Households of a small compound, in the households file's columns."""
    rng = random.Random(seed)
    rows = []
    for b in range(1, spec.buildings + 1):
        for floor in range(1, 5):
            for n in (1, 2):
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                rows.append([spec.name, f"{b}号楼", "1", str(floor), f"{floor}0{n}",
                             registry.format_area(rng.randint(5000, 9500)), name,
                             f"{seed}-{b}-{floor}{n}", ""])
    return rows


def _community(name: str) -> Community:
    community = db.session.scalar(select(Community).where(Community.name == name))
    if community is None:
        community = registry.create_community(None, name, STREET_OFFICE)
    return community


def _small_compound(spec: SmallCompound, seed: int) -> Compound:
    community = _community(spec.community)
    compound = db.session.scalar(select(Compound).where(
        Compound.community_id == community.id, Compound.name == spec.name))
    if compound is None:
        compound = registry.create_compound(None, community, spec.name, spec.address)
    has_households = db.session.scalar(
        select(func.count(Household.id)).join(Household.building)
        .where(Building.compound_id == compound.id))
    if not has_households:
        data = write_csv(registry.EXPORT_HEADERS["zh"], _small_rows(spec, seed))
        registry.import_households(None, data, "demo.csv", compound=compound,
                                   create_buildings=True)
    return compound


def grid_file() -> bytes:
    """The demo's grids file, as a street office would write it."""
    rows = [[STREET_OFFICE, community, grid, name]
            for community, grid, name in GRID_OF_DEMO_COMPOUNDS]
    rows += [[STREET_OFFICE, s.community, s.grid, s.name] for s in SMALL_COMPOUNDS]
    return write_csv(["街道", "社区", "网格", "小区"], rows)


def demo_grid() -> Grid:
    community, name = DEMO_GRID
    return db.session.scalars(select(Grid).join(Grid.community).where(
        Community.name == community, Grid.name == name)).one()


def seed_grids(committee: Any, supervisor: Any) -> dict[str, Compound]:
    """Create (or find) the small compounds, import the grids file, and give the small
    compounds their consultations. Flushes; the caller commits. Returns the compounds by
    name."""
    compounds = {spec.name: _small_compound(spec, 300 + n)
                 for n, spec in enumerate(SMALL_COMPOUNDS)}
    plan = grids.check_grids(grid_file(), "解放街道网格.csv")
    if plan.errors:
        raise RuntimeError(f"the demo grids file has problems: {plan.errors}")
    if plan.assigned or plan.moved or plan.offices_attached:
        grids.apply_grids(None, plan)
    # The committee runs the small compounds' consultations too; the supervisor watches.
    for user in (committee, supervisor):
        for compound in compounds.values():
            if compound.id not in user.scoped_compound_ids():
                accounts.add_scope(None, user, compound=compound)
    _seed_stages(compounds, committee, supervisor)
    return compounds


def _seed_stages(compounds: dict[str, Compound], committee: Any, supervisor: Any) -> None:
    """Small compounds at different stages: three collecting opinions, one voting, one in
    works, one finished; the others have none yet."""
    now = utcnow()
    rng = random.Random(2027)
    titled = set(db.session.execute(select(Consultation.compound_id, Consultation.title)))

    def missing(compound: Compound, title: str) -> bool:
        return (compound.id, title) not in titled

    for n, name in enumerate(("粮食局宿舍", "供销社家属院", "卫生院家属楼")):
        compound, title = compounds[name], "2027 年改造意见征集"
        if not missing(compound, title):
            continue
        c = _new(committee, compound, title, "征集居民对楼院改造的意见和建议。",
                 now=now - (6 + n) * DAY)
        c.solicitation_deadline = now + (10 + n) * DAY
        workflow.apply(c, Action.START_SOLICITING, committee, now=now - (6 + n) * DAY)
        voices = _households(c)
        for k, (category, text) in enumerate(OPINIONS[n:n + 3]):
            opinions.submit(None, c, voices[(k * 5 + n) % len(voices)],
                            opinions.opinion_data(category=category, text=text))

    compound, title = compounds["税务局小区"], "楼道粉刷与照明"
    if missing(compound, title):
        c = _new(committee, compound, title, "楼道墙面粉刷，更换声控 LED 灯。",
                 items=[RENOVATION_TASKS[9]], now=now - 20 * DAY)
        _to_discussion(c, committee, now - 15 * DAY)
        _vote(c, committee, now - 2 * DAY, 9, rng, 0.55, 0.85)

    compound, title = compounds["棉纺二厂家属院"], "消防设施补齐"
    if missing(compound, title):
        c = _new(committee, compound, title, "补齐楼道灭火器和应急照明，疏通消防通道。",
                 items=[RENOVATION_TASKS[7]], now=now - 60 * DAY)
        _to_discussion(c, committee, now - 55 * DAY)
        _vote(c, committee, now - 50 * DAY, 10, rng, 0.85, 0.9)
        published = _close_and_publish(c, committee)
        _works(c, committee, supervisor, published + 8 * DAY, finish=False)

    compound, title = compounds["交通局小区"], "架空线缆整治"
    if missing(compound, title):
        c = _new(committee, compound, title, "通信、有线电视线缆规整上墙，拆除废弃线缆。",
                 items=[RENOVATION_TASKS[3]], now=now - 150 * DAY)
        _to_discussion(c, committee, now - 140 * DAY)
        _vote(c, committee, now - 120 * DAY, 10, rng, 0.9, 0.9)
        published = _close_and_publish(c, committee)
        result = _works(c, committee, supervisor, published + 8 * DAY, finish=True)
        _evaluate(c, rng, result + DAY, 0.7, set())
        workflow.apply(c, Action.CLOSE, committee, now=result + 8 * DAY + timedelta(hours=1))
