"""The audit trail as people read it (consult/audit/presenting.py and the domains' readers):
labels of every action, objects by name, formatted amounts and areas, answers before and
after, and the filters by household and by kind of change."""

import ast
import html
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask_babel import force_locale

from consult.audit import actions
from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.audit.presenting import money, present, square_metres
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.core.policy import POLICY
from consult.extensions import db
from consult.process import workflow
from tests import factories
from tests.access.uploads import png_upload

ROOT = Path(__file__).resolve().parents[2]
EN = {"Accept-Language": "en"}
_CODE = re.compile(r"^[a-z_]+(\.[a-z_]+){1,2}$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _constants(node: ast.AST) -> list[str]:
    """Action codes an argument may hold: a string, or either branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    return []


def recorded_actions() -> set[str]:
    """Every action code the source records: the second argument of ``audit.record``, the
    first element of the tuples ``audit.record_many`` takes, and, where ``record`` is given a
    variable, every code-like string of that module that is no permission."""
    found: set[str] = set()
    for path in sorted((ROOT / "consult").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        variable = many = False
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "audit"):
                continue
            if node.func.attr == "record" and len(node.args) > 1:
                codes = _constants(node.args[1])
                found.update(codes)
                variable |= not codes
            many |= node.func.attr == "record_many"
        if many:
            for node in ast.walk(tree):
                if isinstance(node, ast.Tuple) and len(node.elts) == 4:
                    found.update(c for c in _constants(node.elts[0]) if _CODE.match(c))
        if variable:
            found.update(node.value for node in ast.walk(tree)
                         if isinstance(node, ast.Constant) and isinstance(node.value, str)
                         and _CODE.match(node.value) and node.value not in POLICY
                         and "." in node.value and not node.value.startswith("consult."))
    return found


def test_the_source_is_scanned_for_every_way_of_recording():
    found = recorded_actions()
    # One of each: a plain code, a conditional one, one through record_many, one passed on
    # in a variable.
    assert {"registry.household.updated", "ballot.changed", "ballot.entry_recorded",
            "opinion.recorded"} <= found


def test_every_recorded_action_has_a_label_and_a_kind_in_every_language(app):
    # A page's endpoint named in such a module (a notification's link) is no action either.
    found = recorded_actions() - {rule.endpoint for rule in app.url_map.iter_rules()}
    assert found - set(actions.known_actions()) == set()
    for code in found:
        kind = actions.action_kind(code)
        assert kind in actions.known_kinds(), code
        with app.test_request_context(headers=EN), force_locale("en"):
            assert actions.action_label(code) != code
            assert actions.kind_label(kind) != kind
        with app.test_request_context(), force_locale("zh_Hans"):
            assert _CJK.search(actions.action_label(code)), code


def test_every_kind_has_actions():
    assert all(actions.actions_of_kind(kind) for kind in actions.known_kinds())


def test_money_and_area_are_formatted(app):
    with app.test_request_context(headers=EN), force_locale("en"):
        assert money(123456) == "¥1,234.56"
        assert money(5) == "¥0.05"
        assert square_metres(6000) == "60.00 m²"


def test_a_household_is_named_by_its_room_and_amounts_and_areas_are_formatted(
        app, client, login_as, compound):
    household = compound.buildings[0].households[0]
    c = factories.make_consultation(compound, title="加装电梯")
    audit.record(None, "registry.household.updated", household,
                 {"changes": {"area_dm2": {"from": 6000, "to": 6150}, "phone": "changed"}})
    audit.record(None, "consultation.item_added", c.items[0],
                 {"estimated_cost_fen": 123456, "number": 1, "title": "电梯"})
    audit.record(None, "opinion.supported", ("opinion", 1, compound.id),
                 {"household_id": household.id})
    login_as("admin")
    text = html.unescape(client.get("/audit/", headers=EN).text)
    room = f"{household.building.name}, unit {household.unit}, room {household.room}"
    assert room in text
    assert f"Household #{household.id}" not in text
    assert "60.00 m²" in text and "61.50 m²" in text and "¥1,234.56" in text
    assert "Estimated cost" in text and "Area" in text
    assert "Item 1: 改造项目1" in text  # the item by number and title
    assert "13812345678" not in text  # personal values are never in the trail
    # The household's name links to its events.
    assert f'/audit/?household={household.id}"' in text


def test_a_corrected_ballot_shows_the_answers_before_and_after(app, client, login_as, compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    household = compound.buildings[0].households[0]
    items = {item.id: item for item in c.items}
    first, second = sorted(items)
    ballots.cast(None, c, household, {first: "agree", second: "agree"}, BallotChannel.ONLINE)
    member = factories.make_user("committee", compound=compound)
    entries.enter(member, c, household,
                  entries.Paper(BallotChannel.PAPER, {first: "disagree", second: "agree"},
                                serial="P-1"),
                  reason="住户交回书面表决票", evidence=png_upload("scan.png"))
    corrected = db.session.query(AuditEvent).filter_by(action="ballot.corrected").one()
    changed = db.session.query(AuditEvent).filter_by(action="ballot.changed").one()
    with app.test_request_context(headers=EN), force_locale("en"):
        view_corrected, view_changed = present([corrected, changed])
    for view in (view_corrected, view_changed):
        assert view.comparison is not None and view.comparison.has_before
        assert view.comparison.rows == [("1. 改造项目1", "Agree", "Disagree"),
                                        ("2. 改造项目2", "Agree", "Agree")]
    changes = {(c.label, c.before, c.after) for c in view_corrected.changes}
    assert ("Channel", "Online", "Paper ballot") in changes and ("Version", "1", "2") in changes
    login_as("admin")
    page = html.unescape(client.get(f"/audit/{corrected.seq}", headers=EN).text)
    table = page[page.index('class="table table-sm table-bordered mb-1 audit-answers'):]
    table = table[:table.index("</table>")]
    assert re.search(r"1\. 改造项目1</th><td>Agree</td><td>Disagree", table)
    assert "Before the change" in table and "After the change" in table
    # The raw record stays there for auditors, as sealed.
    assert '"choices_before": {' in page and corrected.hash in page
    # The first version of a ballot has only its answers.
    cast = db.session.query(AuditEvent).filter_by(action="ballot.cast").one()
    with app.test_request_context(headers=EN), force_locale("en"):
        (view_cast,) = present([cast])
    assert view_cast.comparison is not None and not view_cast.comparison.has_before
    assert [row[2] for row in view_cast.comparison.rows] == ["Agree", "Agree"]


def _seqs(text: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/audit/(\d+)"', text)}


@pytest.fixture
def trail(compound):
    """Events of two households of the compound, of several kinds."""
    one, two = compound.buildings[0].households[:2]
    return {
        "one_updated": audit.record(None, "registry.household.updated", one, {"changes": {}}),
        "two_updated": audit.record(None, "registry.household.updated", two, {"changes": {}}),
        "one_opinion": audit.record(None, "opinion.supported", ("opinion", 7, compound.id),
                                    {"household_id": one.id}),
        "one_code": audit.record(None, "accounts.access_code.issued", one,
                                 {"access_code_id": 3, "revoked_earlier": 0}),
        # A confidential ballot names no household: a filter by household cannot find it.
        "secret": audit.record(None, "ballot.cast", ("ballot", 9, compound.id),
                               {"household_id": None, "choices": {}}),
        "other": audit.record(None, "registry.compound.created", compound, {"name": "x"}),
        "household": one, "second": two,
    }


def test_filter_by_household_finds_its_events_and_those_naming_it(client, login_as, trail):
    login_as("admin")
    one = trail["household"]
    text = client.get(f"/audit/?household={one.id}", headers=EN).text
    assert _seqs(text) == {trail[k].seq for k in ("one_updated", "one_opinion", "one_code")}
    assert "Events of " in text


def test_filter_by_room_search(client, login_as, trail, compound):
    login_as("admin")
    one = trail["household"]
    # Building and room: the one household.
    text = client.get(f"/audit/?room={one.building.name}-{one.room}", headers=EN).text
    assert trail["one_updated"].seq in _seqs(text) and trail["two_updated"].seq not in _seqs(text)
    # The same room in two buildings: both are offered.
    twin = next(h for h in compound.buildings[1].households if h.room == one.room)
    text = html.unescape(client.get(f"/audit/?room={one.room}", headers=EN).text)
    assert "Choose one" in text
    assert f"household={one.id}" in text and f"household={twin.id}" in text
    text = client.get("/audit/?room=9999", headers=EN).text
    assert "No household of your area has the room" in text


def test_filter_by_kind_and_combined(client, login_as, trail):
    login_as("admin")
    text = client.get("/audit/?kind=registry", headers=EN).text
    assert _seqs(text) == {trail[k].seq for k in ("one_updated", "two_updated", "other")}
    one = trail["household"]
    text = client.get(f"/audit/?kind=accounts&household={one.id}", headers=EN).text
    assert _seqs(text) == {trail["one_code"].seq}
    text = client.get(f"/audit/?kind=registry&household={one.id}"
                      "&action=registry.household.updated", headers=EN).text
    assert _seqs(text) == {trail["one_updated"].seq}
    # An unknown kind filters nothing out.
    assert trail["other"].seq in _seqs(client.get("/audit/?kind=nonsense").text)


def test_filters_page_together(client, login_as, compound):
    one = compound.buildings[0].households[0]
    for n in range(55):
        audit.record(None, "registry.household.updated", one, {"n": n})
        audit.record(None, "registry.compound.created", compound, {"n": n})
    login_as("admin")
    first = client.get(f"/audit/?kind=registry&household={one.id}").text
    assert 'rel="next"' in first and len(_seqs(first)) == 50
    second = client.get(f"/audit/?kind=registry&household={one.id}&page=2").text
    assert len(_seqs(second)) == 5 and 'rel="next"' not in second


def test_a_supervisor_elsewhere_sees_nothing_of_another_area(client, login_as, trail):
    elsewhere = factories.make_compound_with_households()
    login_as("supervisor", compound=elsewhere)
    one = trail["household"]
    text = client.get("/audit/", headers=EN).text
    assert not _seqs(text) & {event.seq for event in trail.values()
                              if isinstance(event, AuditEvent)}
    # Neither by filtering for one of its households (which is not even named), nor by
    # searching its room (which finds the same room of the supervisor's own area).
    text = html.unescape(client.get(f"/audit/?household={one.id}", headers=EN).text)
    assert _seqs(text) == set() and "Events of" not in text
    assert "No household of your area has this number." in text
    text = html.unescape(client.get(f"/audit/?room={one.building.name}-{one.room}",
                                    headers=EN).text)
    assert _seqs(text) == set()
    assert client.get(f"/audit/{trail['one_updated'].seq}").status_code == 403


def test_the_supervisor_of_the_area_sees_its_events(client, login_as, trail, compound):
    login_as("supervisor", compound=compound)
    one = trail["household"]
    text = client.get(f"/audit/?household={one.id}", headers=EN).text
    assert trail["one_opinion"].seq in _seqs(text)


def test_reading_leaves_the_chain_as_it_was(client, login_as, trail):
    login_as("admin")
    before = audit.chain_head()
    assert client.get("/audit/").status_code == 200
    assert client.get(f"/audit/{trail['one_updated'].seq}").status_code == 200
    assert audit.chain_head() == before
    assert audit.verify(checks={}).ok
    assert json.loads(trail["one_code"].payload) == {"access_code_id": 3, "revoked_earlier": 0}


def test_a_room_of_several_households_shows_the_events_of_all_of_them(client, login_as, trail,
                                                                     compound):
    one = trail["household"]
    twin = next(h for h in compound.buildings[1].households if h.room == one.room)
    theirs = audit.record(None, "registry.household.updated", twin, {"changes": {}})
    login_as("admin")
    text = client.get(f"/audit/?room={one.room}", headers=EN).text
    assert _seqs(text) == {trail[k].seq for k in ("one_updated", "one_opinion", "one_code")} | {
        theirs.seq}
    # A room nobody has: no events at all, not every event.
    assert _seqs(client.get("/audit/?room=9999").text) == set()


def test_the_room_is_named_in_the_readers_language(client, login_as, compound):
    from consult.registry.models import household_label

    household = compound.buildings[0].households[0]
    audit.record(None, "registry.household.updated", household, {"changes": {}})
    login_as("admin")
    for locale, header in (("zh_Hans", "zh-CN"), ("en", "en")):
        with force_locale(locale):
            label = household_label(household.building.name, household.unit, household.room)
        text = html.unescape(client.get("/audit/", headers={"Accept-Language": header}).text)
        assert f">{label}</a>" in text, locale
