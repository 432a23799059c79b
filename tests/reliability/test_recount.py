"""Anyone can recount a vote from its audit export with ``tools/recount.py`` (standard library
only, no code of the application) and reach exactly the numbers of the frozen tally; an edited
export is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel, VoteResult
from consult.ballots.tally import PRESETS, Rule
from consult.consultations import service
from consult.consultations.models import Consultation
from consult.consultations.states import Action, Stage
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
from consult.registry.models import Household
from tests import conftest as suite
from tests import factories

# tests/reliability/conftest.py switches the suite's per-test transaction off for its
# live-server tests; these tests work in the suite's own database and need it back.
_isolation = suite._isolation

RECOUNT = Path(__file__).resolve().parents[2] / "tools" / "recount.py"
HOUR = timedelta(hours=1)
# A local rule (e.g. a compound's 议事规则): no more than a third of the area and the owners
# against, and at least half the households taking part.
LOCAL_RULE = json.dumps({"code": "custom", "conditions": [
    {"measure": "area", "count": "objecting", "base": "roll", "comparison": "le",
     "fraction": "1/3"},
    {"measure": "owners", "count": "objecting", "base": "roll", "comparison": "le",
     "fraction": "1/3"},
    {"measure": "households", "count": "participating", "base": "roll", "comparison": "ge",
     "fraction": "1/2"}]})


@dataclass
class Vote:
    consultation: Consultation
    start: datetime


class Compound:
    """Two buildings, twelve households of different areas; 李 owns two flats (one in each
    building), and so does 王."""

    def __init__(self) -> None:
        self.compound = factories.make_compound("滨河小区")
        self.committee = factories.make_user("committee", compound=self.compound)
        self.households: list[Household] = []
        owners = {0: "owner:li", 7: "owner:li", 3: "owner:wang", 4: "owner:wang"}
        for b, name in enumerate(("1号楼", "2号楼")):
            building = factories.make_building(self.compound, name)
            for n in range(6):
                index = b * 6 + n
                self.households.append(factories.make_household(
                    building, room=f"{n // 2 + 1}0{n % 2 + 1}", area_dm2=5000 + 1237 * index,
                    owner_key=owners.get(index), owner_name=f"业主{index}",
                    phone=f"1391234{index:04d}"))

    def vote(self, title: str, rule: str, secrecy: str, items: int, start: datetime,
             rule_json: str | None = None) -> Vote:
        """A consultation taken to an open vote, as the committee would."""
        # Created with another rule and changed before the vote: the recount must find the
        # rule in the settings events, not just at creation.
        consultation = service.create(self.committee, self.compound, self.settings(
            title, "household_two_thirds", secrecy, start), now=start)
        for n in range(items):
            service.add_item(self.committee, consultation, service.item_data(
                title=f"{title}·第{n + 1}项", description="", cost="1000"))
        service.update(self.committee, consultation, self.settings(
            title, rule, secrecy, start, rule_json), now=start)
        for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION,
                       Action.OPEN_VOTE):
            workflow.apply(consultation, action, self.committee, now=start)
        return Vote(consultation, start)

    @staticmethod
    def settings(title: str, rule: str, secrecy: str, start: datetime,
                 rule_json: str | None = None) -> Any:
        return service.settings(
            title=title, summary="", rule_code=rule, rule_json=rule_json, secrecy=secrecy,
            locale="zh_Hans", solicitation_deadline=None, vote_deadline=start + 240 * HOUR,
            publicity_days=7, proxy_cap=2)

    def cast(self, vote: Vote, index: int, hour: int, answers: str,
             channel: BallotChannel = BallotChannel.ONLINE, proxy: str | None = None) -> None:
        """Household ``index`` answers "a", "d", "x" (abstain), "u" (undecided) or "n" (not
        reached) on the items, in order, ``hour`` hours into the vote."""
        words = {"a": "agree", "d": "disagree", "x": "abstain", "u": "undecided",
                 "n": "not_reached"}
        items = vote.consultation.items
        ballots.cast(
            None if channel is BallotChannel.ONLINE else self.committee, vote.consultation,
            self.households[index], {i.id: words[a] for i, a in zip(items, answers, strict=True)},
            channel, now=vote.start + hour * HOUR,
            serial=f"BH-{vote.consultation.id}-{index:02d}" if channel is BallotChannel.PAPER
            else None,
            proxy=ballots.Proxy(proxy, ballots.proxy_identity(proxy), None) if proxy else None)

    def close(self, vote: Vote) -> None:
        deadline = vote.consultation.vote_deadline
        workflow.apply(vote.consultation, Action.CLOSE_VOTE, self.committee, now=deadline)
        workflow.apply(vote.consultation, Action.PUBLISH_RESOLUTION, self.committee,
                       now=deadline + HOUR)


@pytest.fixture
def votes() -> dict[str, Consultation]:
    """Four counted votes with several presets, channels and changed ballots."""
    c = Compound()
    start = utcnow() - timedelta(days=30)
    paper, proxy, door = BallotChannel.PAPER, BallotChannel.PROXY, BallotChannel.DOOR_TO_DOOR

    lift = c.vote("加装电梯", "civil_code_278_general", "open", 3, start)
    c.cast(lift, 0, 1, "aaa")                  # 李, first flat (the lower ballot id)
    c.cast(lift, 7, 2, "dda")                  # 李, second flat: disagrees
    c.cast(lift, 3, 3, "aaa", paper)
    c.cast(lift, 4, 4, "ada", proxy, "张代理")  # 王's second flat, by proxy
    c.cast(lift, 1, 5, "adx")
    c.cast(lift, 2, 6, "dax", paper)
    c.cast(lift, 5, 7, "aaa", proxy, "张代理")
    c.cast(lift, 8, 8, "nnn", door)            # nobody home
    c.cast(lift, 9, 9, "aaa", paper)
    c.cast(lift, 0, 10, "xaa")                 # 李 changes the first flat's ballot last
    c.cast(lift, 9, 11, "daa", paper)          # a paper ballot corrected
    c.close(lift)

    manager = c.vote("选聘物业", "civil_code_278_major", "confidential", 2, start + 2 * HOUR)
    for index, hour, answers in ((0, 1, "aa"), (1, 2, "ad"), (3, 3, "aa"), (4, 4, "ax"),
                                 (5, 5, "dd"), (6, 6, "aa"), (7, 7, "aa"), (8, 8, "aa"),
                                 (10, 9, "ad"), (1, 10, "aa"), (7, 11, "dd")):
        c.cast(manager, index, hour, answers, paper if index % 3 == 0 else BallotChannel.ONLINE)
    c.close(manager)

    survey = c.vote("充电桩意向调查", "survey", "open", 1, start + 4 * HOUR)
    for index, answers in enumerate("aadunaudna"):
        c.cast(survey, index, index + 1, answers, door)
    c.close(survey)

    repair = c.vote("维修资金使用", "custom", "open", 2, start + 6 * HOUR, LOCAL_RULE)
    for index, answers in ((0, "ad"), (2, "dd"), (3, "aa"), (6, "ax"), (7, "aa"), (11, "da")):
        c.cast(repair, index, index + 1, answers, paper)
    c.close(repair)
    return {"lift": lift.consultation, "manager": manager.consultation,
            "survey": survey.consultation, "repair": repair.consultation}


def frozen_tally(runner: Any, consultation: Consultation) -> dict[str, Any]:
    result = runner.invoke(args=["ballots", "tally", str(consultation.id), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def export(runner: Any, path: Path, consultation: Consultation | None = None) -> Path:
    args = ["audit", "export", str(path)]
    if consultation is not None:
        args[2:2] = ["--consultation", str(consultation.id)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return path


def recount(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run the tool as an outsider would: its own process, the standard library only (-S: no
    site-packages, -I: nothing from the environment or the working directory)."""
    done = subprocess.run([sys.executable, "-I", "-S", str(RECOUNT), str(path), "--json", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def assert_same_numbers(mine: dict[str, Any], frozen: dict[str, Any]) -> None:
    """Every number of the frozen tally, compared with the recount."""
    assert (mine["consultation_id"], mine["round"]) == (frozen["consultation_id"],
                                                        frozen["round"])
    assert mine["rule"]["code"] == frozen["rule"]["code"]
    assert mine["rule"]["conditions"] == [
        {k: c[k] for k in ("measure", "count", "base", "comparison", "fraction")}
        for c in frozen["rule"]["conditions"]]
    assert mine["roll"] == frozen["roll"]
    assert mine["participation"] == frozen["participation"]
    assert mine["passed"] == frozen["passed"]
    assert len(mine["items"]) == len(frozen["items"])
    for got, want in zip(mine["items"], frozen["items"], strict=True):
        for key in ("number", "title", "counts", "owners", "area_m2", "percentages",
                    "participation", "passed", "owner_conflicts"):
            assert got[key] == want[key], (got["number"], key)
        assert [{k: c[k] for k in ("numerator", "denominator", "threshold", "comparison",
                                   "met")} for c in got["conditions"]] == [
            {k: c[k] for k in ("numerator", "denominator", "threshold", "comparison", "met")}
            for c in want["conditions"]], got["number"]


def test_the_recount_reaches_every_number_of_the_frozen_tally(votes, runner, tmp_path):
    for name, consultation in votes.items():
        frozen = frozen_tally(runner, consultation)
        code, report = recount(export(runner, tmp_path / f"{name}.json", consultation))
        assert (code, report["problems"]) == (0, []), name
        (mine,) = report["recounts"]
        assert_same_numbers(mine, frozen)
    # The whole chain at once: the same recounts, and the chain proven up to its head.
    code, report = recount(export(runner, tmp_path / "chain.json"))
    assert (code, report["problems"]) == (0, [])
    assert {r["consultation_id"] for r in report["recounts"]} == {
        c.id for c in votes.values()}


def test_the_vote_is_as_the_rules_say(votes, runner, tmp_path):
    """Not only do the two counts agree: they count what the rules say."""
    code, report = recount(export(runner, tmp_path / "lift.json", votes["lift"]))
    assert code == 0
    (lift,) = report["recounts"]
    first = lift["items"][0]
    # Item 1: 李's two flats answered differently; his most recent ballot (the first flat's,
    # changed last, to abstain) is his one head: the second flat's "disagree" is no head.
    assert first["counts"] == {"agree": 4, "disagree": 3, "abstain": 1, "not_reached": 1,
                               "none": 3}
    # 王's two flats agree: one head. 10 owners on the roll, 7 of them answered.
    assert first["owners"] == {"agree": 3, "disagree": 2, "abstain": 1, "not_reached": 1,
                               "none": 3}
    assert first["owner_conflicts"] == 1
    assert lift["roll"] == {"households": 12, "owners": 10, "area_m2": "1416.42"}
    assert lift["rule"] == json.loads(PRESETS["civil_code_278_general"].to_json())
    code, report = recount(export(runner, tmp_path / "repair.json", votes["repair"]))
    assert code == 0
    (repair,) = report["recounts"]
    assert repair["rule"]["code"] == "custom"
    assert repair["rule"] == json.loads(Rule.from_json(LOCAL_RULE).to_json())
    # 6 of 12 households took part: exactly 1/2, which is enough ("at least").
    assert repair["items"][0]["conditions"][2]["numerator"] == 6
    assert repair["items"][0]["conditions"][2]["met"] is True


def _edited(path: Path, edit: Any) -> Path:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    out = path.with_name(f"edited-{path.name}")
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return out


def _counted_ballot_event(data: dict[str, Any]) -> dict[str, Any]:
    """The first ballot event that is its ballot's only one (so it counts)."""
    events = [e for e in data["events"] if e["action"] in ("ballot.cast", "ballot.changed")]
    once = [e for e in events if [x["object_id"] for x in events].count(e["object_id"]) == 1]
    return once[0]


def test_an_edited_export_is_caught(votes, runner, tmp_path):
    original = export(runner, tmp_path / "lift.json", votes["lift"])

    def change_a_choice(data: dict[str, Any]) -> None:
        event = _counted_ballot_event(data)
        payload = json.loads(event["payload"])
        payload["choices"]["1"] = "disagree" if payload["choices"]["1"] != "disagree" else "agree"
        event["payload"] = json.dumps(payload, ensure_ascii=False, sort_keys=True,
                                      separators=(",", ":"))
        data["changed"] = event["seq"]

    edited = _edited(original, change_a_choice)
    code, report = recount(edited)
    seq = json.loads(edited.read_text(encoding="utf-8"))["changed"]
    assert code == 1
    assert any(f"event #{seq}" in p and "does not match its hash" in p
               for p in report["problems"]), report["problems"]

    def change_and_rehash(data: dict[str, Any]) -> None:
        # A forger who also recomputes the event's hash breaks the next event's link, and the
        # recount no longer matches the recorded result.
        from hashlib import sha256

        change_a_choice(data)
        event = next(e for e in data["events"] if e["seq"] == data["changed"])
        event["hash"] = sha256(json.dumps([event[f] for f in data["hash_fields"]],
                                          ensure_ascii=False, separators=(",", ":"))
                               .encode()).hexdigest()

    code, report = recount(_edited(original, change_and_rehash))
    assert code == 1
    assert any("does not point to event" in p for p in report["problems"]), report["problems"]
    assert any("recorded" in p and "counts" in p for p in report["problems"])

    def change_the_notice(data: dict[str, Any]) -> None:
        notice = next(n for n in data["notices"] if n["kind"] == "resolution")
        assert '"agree":4' in notice["content"]
        notice["content"] = notice["content"].replace('"agree":4', '"agree":5', 1)

    code, report = recount(_edited(original, change_the_notice))
    assert code == 1
    assert any("content does not match its SHA-256" in p for p in report["problems"])


def test_the_demo_data_recounts(runner, tmp_path):
    seeded = runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"})
    assert seeded.exit_code == 0, seeded.output
    code, report = recount(export(runner, tmp_path / "demo.json"))
    assert (code, report["problems"]) == (0, [])
    counted = [r["consultation_id"] for r in report["recounts"]]
    # Every counted vote of the demo: in 劳动局家属院 closed, result_public, implementing,
    # resolution_public and vote_counted, and those of the street office's small compounds.
    assert sorted(counted) == sorted(db.session.scalars(select(VoteResult.consultation_id)))
    assert len(counted) >= 5
    unpublished = {c.id for c in db.session.scalars(select(Consultation).where(
        Consultation.stage == Stage.VOTE_COUNTED.value))}
    assert len(unpublished) == 1 and unpublished < set(counted)
    for consultation_id in counted:
        frozen = json.loads(runner.invoke(args=["ballots", "tally", str(consultation_id),
                                                "--json"]).output)
        (mine,) = [r for r in report["recounts"] if r["consultation_id"] == consultation_id]
        if consultation_id in unpublished:
            # The recount reads the items' titles off the resolution notice: none yet.
            assert [item["title"] for item in mine["items"]] == [""]
            frozen["items"] = [{**item, "title": ""} for item in frozen["items"]]
        assert_same_numbers(mine, frozen)
