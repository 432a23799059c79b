"""Demo data: a believable compound, a second small one, and one account for every role.

Idempotent: a second run finds what the first one made and only refreshes the demo passwords
(if someone changed them) and the printed access code.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from consult.accounts import service as accounts
from consult.accounts.models import User
from consult.consultations.models import Consultation
from consult.core.policy import Role
from consult.core.tabular import write_csv
from consult.demo_consultations import seed_consultations
from consult.demo_grids import demo_grid, seed_grids
from consult.demo_scoring import seed_scoring
from consult.demo_visits import seed_visits
from consult.extensions import db
from consult.registry import service as registry
from consult.registry.models import Building, Community, Compound, Household

SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁"
            "邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎")
GIVEN = (
    "建国", "秀英", "桂兰", "志强", "玉兰", "淑珍", "国庆", "建华", "丽华", "红梅", "永刚", "春花",
    "德明", "素芬", "海燕", "卫东", "凤英", "宝山", "金凤", "立新", "文革", "学军", "玉梅", "秀珍",
    "振华", "翠兰", "广才", "淑华", "长江", "美玲", "晓东", "俊杰", "雪梅", "丽娟", "国强", "小红",
)


@dataclass(frozen=True)
class DemoCompound:
    community: str
    street: str
    name: str
    address: str
    buildings: int
    units: int
    floors: int
    per_floor: int
    seed: int


LAODONGJU = DemoCompound("建设路社区", "解放街道", "劳动局家属院", "建设路 88 号", 6, 3, 6, 2, 2026)
FANGZHI = DemoCompound("光明社区", "解放街道", "纺织厂宿舍", "光明巷 12 号", 2, 1, 5, 2, 1958)

DEMO_PASSWORDS = {
    "admin": "demo-admin-2026",
    "committee": "demo-committee-2026",
    "supervisor": "demo-supervisor-2026",
    "resident": "demo-resident-2026",
    "grid": "demo-grid-2026",
}


@dataclass
class DemoResult:
    accounts: list[tuple[str, str, str, str]] = field(default_factory=list)  # role, user, pw, note
    access_code: str = ""
    access_code_household: str = ""
    households: int = 0
    consultations: int = 0


def household_rows(spec: DemoCompound) -> list[list[str]]:
    """Rows of a households file for a made-up compound, the same for the same seed."""
    rng = random.Random(spec.seed)
    rows: list[list[str]] = []
    owners: list[tuple[str, str, str]] = []
    for b in range(1, spec.buildings + 1):
        for unit in range(1, spec.units + 1):
            for floor in range(1, spec.floors + 1):
                for n in range(1, spec.per_floor + 1):
                    # About one flat in forty belongs to someone who already owns one.
                    if owners and rng.random() < 0.025:
                        name, key, phone = rng.choice(owners)
                    else:
                        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                        key = hashlib.sha256(f"{spec.name}-{len(owners)}".encode()).hexdigest()[:16]
                        phone = "1" + rng.choice("3578") + "".join(
                            rng.choice("0123456789") for _ in range(9))
                        owners.append((name, key, phone))
                    area = rng.randint(4500, 12000)
                    rows.append([spec.name, f"{b}号楼", str(unit), str(floor), f"{floor}0{n}",
                                 registry.format_area(area), name, key, phone])
    return rows


def _compound(spec: DemoCompound) -> tuple[Compound, int]:
    community = db.session.scalar(select(Community).where(Community.name == spec.community))
    if community is None:
        community = registry.create_community(None, spec.community, spec.street)
    compound = db.session.scalar(select(Compound).where(
        Compound.community_id == community.id, Compound.name == spec.name))
    if compound is None:
        compound = registry.create_compound(None, community, spec.name, spec.address)
    existing = db.session.scalar(select(func.count(Household.id)).join(Household.building)
                                 .where(Building.compound_id == compound.id)) or 0
    if existing == 0:
        data = write_csv(registry.EXPORT_HEADERS["zh"], household_rows(spec))
        registry.import_households(None, data, "demo.csv", compound=compound,
                                   create_buildings=True)
    total = db.session.scalar(select(func.count(Household.id)).join(Household.building)
                              .where(Building.compound_id == compound.id)) or 0
    return compound, total


def _household(compound: Compound, building: str, unit: str, room: str) -> Household:
    """One demo household by its address."""
    return db.session.scalars(select(Household).join(Household.building).where(
        Building.compound_id == compound.id, Building.name == building,
        Household.unit == unit, Household.room == room)).one()


def _account(username: str, display_name: str, role: Role,
             household: Household | None = None) -> User:
    password = DEMO_PASSWORDS[username]
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        user = accounts.create_user(None, username=username, display_name=display_name,
                                    role=role.value, password=password, household=household)
    elif not user.check_password(password):
        accounts.set_password(None, user, password)
    return user


def seed_demo() -> DemoResult:
    """Create (or find) the demo compounds and accounts. Flushes; the caller commits."""
    result = DemoResult()
    main, count = _compound(LAODONGJU)
    _other, other_count = _compound(FANGZHI)
    result.households = count + other_count

    # Named in the demo's language, as everything else it freezes.
    admin = _account("admin", _("Street office administrator Zhang Wei"), Role.ADMIN)
    committee = _account("committee", _("Residents' committee Li Hongmei"), Role.COMMITTEE)
    supervisor = _account("supervisor", _("Residents' supervisor Wang Jianguo"),
                          Role.SUPERVISOR)
    for user in (committee, supervisor):
        if main.id not in user.scoped_compound_ids():
            accounts.add_scope(admin, user, compound=main)
    resident_home = _household(main, "1号楼", "1", "101")
    _account("resident", resident_home.label, Role.RESIDENT, household=resident_home)

    # A fresh letter for the first household that has not signed in yet.
    code_home = db.session.scalars(
        select(Household).join(Household.building)
        .outerjoin(User, User.household_id == Household.id)
        .where(Building.compound_id == main.id, User.id.is_(None))
        .order_by(Building.sort_key, Household.sort_key).limit(1)).first()
    if code_home is not None:
        result.access_code = accounts.format_code(accounts.issue_access_code(admin, code_home))
        result.access_code_household = code_home.label

    seed_consultations(main, committee, supervisor, resident_home)
    seed_visits(main, committee, resident_home)
    result.consultations = db.session.scalar(select(func.count(Consultation.id)).where(
        Consultation.compound_id == main.id)) or 0

    small = seed_grids(committee, supervisor)
    result.households += sum(registry.household_counts([c.id for c in small.values()])
                             .get(c.id, (0, 0))[0] for c in small.values())
    grid_worker = _account("grid", _("Grid worker Zhao Min"), Role.GRID_WORKER)
    grid = demo_grid()
    if grid.id not in {s.grid_id for s in grid_worker.scopes}:
        accounts.add_scope(admin, grid_worker, grid=grid)
    # After the grids: the round is among the street office's compounds.
    seed_scoring(admin)

    for role, username in ((Role.ADMIN, "admin"), (Role.COMMITTEE, "committee"),
                           (Role.SUPERVISOR, "supervisor"), (Role.RESIDENT, "resident"),
                           (Role.GRID_WORKER, "grid")):
        result.accounts.append((role.value, username, DEMO_PASSWORDS[username], ""))
    return result


def report(result: DemoResult) -> list[str]:
    """What ``seed_demo`` made, in lines for the reader (``flask demo seed``): the counts, every
    demo account with its password, and the printed access code if one was issued."""
    lines = [_("Demo data ready: %(n)s households and %(c)s consultations, one in every stage.",
               n=result.households, c=result.consultations),
             _("Demo accounts (username / password):")]
    lines += [f"  {role:<11} {username:<11} {password}"
              for role, username, password, _note in result.accounts]
    if result.access_code:
        lines.append(_("Household access code for %(household)s: %(code)s",
                       household=result.access_code_household, code=result.access_code))
    return lines
