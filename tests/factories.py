"""Factory functions for test data. They add to the session and flush; they write no audit."""

from __future__ import annotations

import itertools
from typing import Any

from werkzeug.security import generate_password_hash

from consult.accounts.models import User, UserScope
from consult.extensions import db
from consult.registry.models import Building, Community, Compound, Grid, Household

_seq = itertools.count(1)
# A cheap hash keeps tests fast; production uses Werkzeug's scrypt default.
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "correct horse 42"


def make_community(name: str | None = None) -> Community:
    community = Community(name=name or f"社区{next(_seq)}", street="解放街道")
    db.session.add(community)
    db.session.flush()
    return community


def make_compound(name: str | None = None, community: Community | None = None) -> Compound:
    compound = Compound(community=community or make_community(), name=name or f"小区{next(_seq)}",
                        address="")
    db.session.add(compound)
    db.session.flush()
    return compound


def make_building(compound: Compound, name: str = "1号楼") -> Building:
    building = Building(compound=compound, name=name)
    db.session.add(building)
    db.session.flush()
    return building


def make_household(building: Building, room: str | None = None, unit: str = "1",
                   area_dm2: int = 8532, owner_name: str = "王建国",
                   owner_key: str | None = None, phone: str | None = "13812345678",
                   floor: int | None = None) -> Household:
    room = room or str(100 + next(_seq))
    household = Household(building=building, unit=unit, room=room, area_dm2=area_dm2,
                          owner_name=owner_name, owner_key=owner_key, phone=phone,
                          floor=floor if floor is not None else int(room[0]))
    db.session.add(household)
    db.session.flush()
    return household


def make_compound_with_households(per_building: int = 4) -> Compound:
    compound = make_compound("劳动局家属院")
    for b in ("1号楼", "2号楼"):
        building = make_building(compound, b)
        for n in range(per_building):
            make_household(building, room=f"{n // 2 + 1}0{n % 2 + 1}",
                           owner_name=f"业主{b}{n}", area_dm2=6000 + 100 * n)
    return compound


def sign_in(client: Any, user: User, method: str = "test", welcome: bool = False) -> Any:
    """Sign a test client in as ``user`` without the sign-in form: a session row and the
    cookie ``accounts.sessions.start`` would leave (``welcome``: as just after a code sign-in,
    free to choose a password). Returns the session row."""
    from consult.accounts import sessions

    record, token = sessions.open_session(user, method, welcome=welcome)
    with client.session_transaction() as sess:
        sess.clear()
        sess["_user_id"] = str(user.id)
        sess["_fresh"] = True
        sess.update(sessions.cookie_fields(user, token))
    return record


def make_older_access_code(household: Household, code: str = "271828182845") -> str:
    """An access code as issued before codes had selectors: only the keyed hash of the whole
    code is stored. Returns the code."""
    from consult.accounts import service as accounts
    from consult.accounts.models import AccessCode

    db.session.add(AccessCode(household=household, code_hash=accounts._code_hash(code)))
    db.session.flush()
    return code


def make_user(role: str, compound: Compound | None = None, household: Household | None = None,
              username: str | None = None, password: str | None = PASSWORD,
              community: Community | None = None, grid: Grid | None = None,
              **kwargs: Any) -> User:
    if role == "resident" and household is None:
        target = compound or make_compound()
        building = target.buildings[0] if target.buildings else make_building(target)
        household = make_household(building)
    user = User(username=username or f"{role}{next(_seq)}", display_name=f"{role} user",
                role=role, household=household,
                password_hash=generate_password_hash(password, method=FAST_HASH)
                if password else None, **kwargs)
    db.session.add(user)
    if role in ("committee", "supervisor"):
        if compound is not None:
            db.session.add(UserScope(user=user, compound=compound))
        if community is not None:
            db.session.add(UserScope(user=user, community=community))
    if role == "grid_worker":
        # A grid worker is scoped to grids: to the compound's grid (made when it has none).
        if compound is not None:
            db.session.add(UserScope(user=user, grid=grid_of(compound)))
        if grid is not None:
            db.session.add(UserScope(user=user, grid=grid))
    db.session.flush()
    return user


def make_grid(community: Community, name: str | None = None) -> Grid:
    grid = Grid(community=community, name=name or f"第{next(_seq)}网格")
    db.session.add(grid)
    db.session.flush()
    return grid


def grid_of(compound: Compound) -> Grid:
    """The compound's grid; a new one in its community when it has none."""
    if compound.grid is None:
        compound.grid = make_grid(compound.community)
        db.session.flush()
    return compound.grid


# --- consultations ----------------------------------------------------------------------------

def make_consultation(compound: Compound, *, stage: str = "draft", items: int = 2,
                      rule: str = "household_majority", secrecy: str = "open",
                      title: str = "老旧小区改造方案") -> Any:
    """A consultation with ``items`` items, put straight into ``stage`` (no workflow run).

    Use ``walk_to`` for a consultation that went through the real workflow.
    """
    from consult.ballots.tally import PRESETS
    from consult.consultations.models import Consultation, Item

    consultation = Consultation(compound=compound, title=title, summary="居民议事，共同决定。",
                                rule_code=rule, rule_json=PRESETS[rule].to_json(),
                                secrecy=secrecy, stage=stage, round=1, publicity_days=7,
                                locale="zh_Hans")
    db.session.add(consultation)
    db.session.flush()
    for n in range(1, items + 1):
        db.session.add(Item(consultation_id=consultation.id, number=n, title=f"改造项目{n}",
                            description=f"第{n}项的说明", estimated_cost_fen=100_000 * n))
    db.session.flush()
    db.session.expire(consultation, ["items"])
    return consultation


def walk_to(consultation: Any, stage: str, *, choices: str = "agree") -> Any:
    """Take a draft consultation through the real workflow up to ``stage``.

    Every household on the roll votes ``choices`` on every item (so the vote closes early, is
    counted at once, and passes with "agree"). Deadlines and publicity periods are passed by
    moving ``now`` forward; returns the ``now`` reached, so callers can keep going from there.
    A vote waits in ``vote_closed`` only when papers are unsettled at its deadline: not a
    stage this walk reaches.
    """
    from datetime import timedelta

    from consult.ballots import service as ballots
    from consult.ballots.models import BallotChannel
    from consult.consultations.states import STAGE_ORDER, Action, Stage
    from consult.core.models import utcnow
    from consult.process import workflow

    if Stage(stage) is Stage.VOTE_CLOSED:
        raise ValueError("walk_to does not leave papers unsettled at the deadline")
    target = STAGE_ORDER.index(Stage(stage))
    now = utcnow()

    def at(s: Stage) -> bool:
        return STAGE_ORDER.index(consultation.stage_enum) >= STAGE_ORDER.index(s)

    steps = [
        (Stage.SOLICITING, Action.START_SOLICITING), (Stage.PROPOSING, Action.START_PROPOSING),
        (Stage.DISCUSSING, Action.START_DISCUSSION),
    ]
    for reached, action in steps:
        if STAGE_ORDER.index(reached) <= target and not at(reached):
            workflow.apply(consultation, action, None, now=now)
    if target >= STAGE_ORDER.index(Stage.VOTING) and not at(Stage.VOTING):
        consultation.vote_deadline = now + timedelta(days=10)
        workflow.apply(consultation, Action.OPEN_VOTE, None, now=now)
        for entry in db.session.scalars(ballots.roll_entries(consultation)):
            household = db.session.get(Household, entry.household_id)
            ballots.cast(None, consultation, household,
                         {item.id: choices for item in consultation.items},
                         BallotChannel.PAPER, now=now)
    if target >= STAGE_ORDER.index(Stage.VOTE_COUNTED) and not at(Stage.VOTE_COUNTED):
        workflow.apply(consultation, Action.CLOSE_VOTE, None, now=now)
    if target >= STAGE_ORDER.index(Stage.RESOLUTION_PUBLIC) and not at(
            Stage.RESOLUTION_PUBLIC):
        workflow.apply(consultation, Action.PUBLISH_RESOLUTION, None, now=now)
    if target >= STAGE_ORDER.index(Stage.IMPLEMENTING) and not at(Stage.IMPLEMENTING):
        now += timedelta(days=consultation.publicity_days, minutes=1)
        workflow.apply(consultation, Action.START_IMPLEMENTATION, None, now=now)
    return now
