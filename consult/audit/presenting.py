"""The audit trail as people read it: who, when, what, on which object named as people name
it, and the recorded details with their field names, amounts, areas and times formatted.

The trail knows no domain, so the domains register what their events mean (as they register
their action labels in ``actions``): the labels and coded values of payload fields
(``describe_fields``), how to name their objects from stored ids (``name_objects``: a
household's room, a consultation's title, in the reader's language) and, for an action that
changes a set of answers, how to set the answers before and after side by side
(``describe_comparison``). What is shown is derived from the stored events only; the events
and their hashes are never touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from consult.audit.actions import action_kind, action_label, actor_label, kind_label, object_label
from consult.audit.models import AuditEvent
from consult.core.display import area
from consult.core.times import format_datetime
from consult.extensions import db

# Names of objects by id (as stored, a string), for a batch of ids at once.
Namer = Callable[[Collection[str]], Mapping[str, str]]


@dataclass(frozen=True)
class Field:
    """What a payload key means: its (lazy) label; the object type its value is the id of,
    to show the object's name; labels of its coded values (stages, choices); or ``hidden``,
    kept in the recorded data only (tokens, numbers that mean nothing to a reader)."""

    label: Any
    refers_to: str | None = None
    values: Mapping[Any, Any] | None = None  # keyed by the stored values (str enums)
    hidden: bool = False


@dataclass(frozen=True)
class Comparison:
    """Answers before and after a change, one row per item: (item, before, after)."""

    rows: list[tuple[str, str, str]]
    has_before: bool


# The previous payload of the same object (None for its first), and the new one.
Comparer = Callable[[Mapping[str, Any], Mapping[str, Any] | None], Comparison | None]

_FIELDS: dict[str, Field] = {}
_ACTION_FIELDS: dict[tuple[str, str], Field] = {}
_NAMERS: dict[str, Namer] = {}
_COMPARERS: dict[str, tuple[Comparer, frozenset[str]]] = {}
# Called once per page with the payloads to compare, so that a comparer's lookups (item titles
# per consultation, say) are one statement for the page, not one per event.
_PREPARERS: list[Callable[[Sequence[Mapping[str, Any]]], None]] = []
# Keys whose values are fingerprints: checked by machines, kept in the recorded data.
_FINGERPRINT = re.compile(r"(^|_)(sha256|hash|root)$")
_UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def describe_fields(fields: Mapping[str, Field], *, actions: Iterable[str] = ()) -> None:
    """Register what payload keys mean: for every action, or only for ``actions``."""
    actions = list(actions)
    if not actions:
        _FIELDS.update(fields)
    for action in actions:
        _ACTION_FIELDS.update({(action, key): value for key, value in fields.items()})


def name_objects(object_type: str, namer: Namer) -> None:
    """Register how objects of ``object_type`` are named from their ids."""
    _NAMERS[object_type] = namer


def describe_comparison(action: str, comparer: Comparer,
                        previous: Collection[str] = ()) -> None:
    """Show ``action``'s answers before and after: ``comparer`` gets the event's payload and
    that of the latest earlier event on the same object among ``previous`` (none asked for
    when empty: the payload holds both)."""
    _COMPARERS[action] = (comparer, frozenset(previous))


def prepare_comparisons(preparer: Callable[[Sequence[Mapping[str, Any]]], None]) -> None:
    """Register ``preparer``, given the payloads of a page's compared events before any is
    compared."""
    _PREPARERS.append(preparer)


def field_of(action: str, key: str) -> Field | None:
    return _ACTION_FIELDS.get((action, key)) or _FIELDS.get(key)


def keys_referring_to(object_type: str) -> list[str]:
    """The payload keys whose values are ids of ``object_type`` (for any action)."""
    keys = {key for key, one in _FIELDS.items() if one.refers_to == object_type}
    keys |= {key for (_action, key), one in _ACTION_FIELDS.items()
             if one.refers_to == object_type}
    return sorted(keys)


def names_of(object_type: str, ids: Collection[str]) -> dict[str, str]:
    """The names of objects of ``object_type`` by id; ids without a name are left out."""
    namer = _NAMERS.get(object_type)
    if namer is None or not ids:
        return {}
    return dict(namer(ids))


def money(fen: int) -> str:
    """123456 (分) → '¥1,234.56', exactly, in the reader's locale."""
    return "¥" + format_decimal(Decimal(fen) / 100, format="#,##0.00")


def square_metres(area_dm2: int) -> str:
    """6000 (0.01 m²) → '60.00 m²'."""
    return f"{area(area_dm2)} m²"


@dataclass
class Detail:
    label: str
    value: str
    key: str
    link_household: str | None = None  # the household id to filter by, if the value names one


@dataclass
class Change:
    label: str
    before: str
    after: str


@dataclass
class EventView:
    """One event as a line of the audit trail."""

    event: AuditEvent
    actor: str
    action: str
    kind: str
    object_type: str
    object_name: str
    object_household: str | None
    details: list[Detail] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    comparison: Comparison | None = None


class _Names:
    """Names of every object a page of events refers to, looked up once per object type."""

    def __init__(self, wanted: Mapping[str, set[str]]) -> None:
        self._names = {object_type: names_of(object_type, ids)
                       for object_type, ids in wanted.items()}

    def get(self, object_type: str, object_id: Any) -> str | None:
        return self._names.get(object_type, {}).get(str(object_id))


def _wanted(events: Sequence[AuditEvent], payloads: Sequence[Mapping[str, Any]]
            ) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {"user_account": set()}
    for event, payload in zip(events, payloads, strict=True):
        if event.object_id is not None:
            wanted.setdefault(event.object_type, set()).add(event.object_id)
        if event.actor_id is not None:
            wanted["user_account"].add(str(event.actor_id))
        for key, value in payload.items():
            one = field_of(event.action, key)
            if one is None or one.refers_to is None or value is None:
                continue
            values = value if isinstance(value, list) else [value]
            wanted.setdefault(one.refers_to, set()).update(str(v) for v in values)
    return wanted


def _plain(value: Any, one: Field | None, key: str, names: _Names) -> str | None:
    """A recorded value in words, or None when it says nothing to a reader."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        parts = [_plain(v, one, key, names) for v in value]
        return ", ".join(p for p in parts if p) or "—"
    if isinstance(value, dict):
        return None  # structured records stay in the recorded data
    if one is not None and one.refers_to is not None:
        return names.get(one.refers_to, value) or f"{object_label(one.refers_to)} #{value}"
    if one is not None and one.values is not None and str(value) in one.values:
        return str(one.values[str(value)])
    if isinstance(value, int) and key.endswith("_fen"):
        return money(value)
    if isinstance(value, int) and key.endswith("_dm2"):
        return square_metres(value)
    if isinstance(value, str) and _UTC_TIME.match(value):
        return format_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")), "short")
    return str(value)


def _label(one: Field | None, key: str) -> str:
    return str(one.label) if one is not None else key


def _shown(action: str, key: str) -> bool:
    one = field_of(action, key)
    return not (_FINGERPRINT.search(key) or (one is not None and one.hidden))


def _changes(action: str, payload: Mapping[str, Any], names: _Names) -> list[Change]:
    """Changed fields: a ``changes`` record (field → {from, to} or "changed", for personal
    values never copied), a top-level ``from``/``to`` pair, and ``x_before``/``x`` pairs."""
    rows: list[Change] = []
    changes = payload.get("changes")
    if isinstance(changes, dict):
        for key, change in changes.items():
            one = field_of(action, key)
            if one is not None and one.hidden:
                continue
            if isinstance(change, dict):
                rows.append(Change(_label(one, key),
                                   _plain(change.get("from"), one, key, names) or "—",
                                   _plain(change.get("to"), one, key, names) or "—"))
            else:
                rows.append(Change(_label(one, key), _("(not shown)"), _("changed")))
    if "from" in payload and "to" in payload:
        one = field_of(action, "from")
        rows.append(Change(str(one.label) if one else _("Value"),
                           _plain(payload["from"], one, "from", names) or "—",
                           _plain(payload["to"], field_of(action, "to") or one, "to", names)
                           or "—"))
    for key in payload:
        if key.endswith("_before") and key[:-7] in payload and _shown(action, key[:-7]):
            one = field_of(action, key[:-7])
            rows.append(Change(_label(one, key[:-7]),
                               _plain(payload[key], one, key[:-7], names) or "—",
                               _plain(payload[key[:-7]], one, key[:-7], names) or "—"))
    return rows


def _paired(payload: Mapping[str, Any]) -> set[str]:
    """Keys shown as changes rather than as details."""
    keys = {"changes"}
    if "from" in payload and "to" in payload:
        keys |= {"from", "to"}
    for key in payload:
        if key.endswith("_before") and key[:-7] in payload:
            keys |= {key, key[:-7]}
    return keys


def _previous_payloads(events: Sequence[AuditEvent]) -> dict[int, Mapping[str, Any]]:
    """For events whose comparison needs it, the payload of the latest earlier event on the
    same object among the actions the comparison names (one query per such event)."""
    found: dict[int, Mapping[str, Any]] = {}
    for event in events:
        compare = _COMPARERS.get(event.action)
        if compare is None or not compare[1] or event.object_id is None:
            continue
        payload = db.session.scalar(
            select(AuditEvent.payload).where(
                AuditEvent.object_type == event.object_type,
                AuditEvent.object_id == event.object_id,
                AuditEvent.action.in_(compare[1]), AuditEvent.seq < event.seq)
            .order_by(AuditEvent.seq.desc()).limit(1))
        if payload is not None:
            found[event.seq] = json.loads(payload)
    return found


def present(events: Sequence[AuditEvent]) -> list[EventView]:
    """``events`` as people read them, in the current language."""
    payloads = [json.loads(event.payload) for event in events]
    names = _Names(_wanted(events, payloads))
    previous = _previous_payloads(events)
    compared = [payload for event, payload in zip(events, payloads, strict=True)
                if event.action in _COMPARERS] + list(previous.values())
    for prepare in _PREPARERS:
        prepare(compared)
    household_keys = set(keys_referring_to("household"))
    views = []
    for event, payload in zip(events, payloads, strict=True):
        kind = action_kind(event.action)
        object_household = event.object_id if event.object_type == "household" else None
        view = EventView(
            event=event,
            actor=(names.get("user_account", event.actor_id) if event.actor_id else None)
            or actor_label(event.actor_label),
            action=action_label(event.action), kind=kind_label(kind) if kind else "",
            object_type=object_label(event.object_type),
            object_name=(names.get(event.object_type, event.object_id)
                         if event.object_id is not None else None) or (
                f"{object_label(event.object_type)} #{event.object_id}"
                if event.object_id is not None else object_label(event.object_type)),
            object_household=object_household)
        compare = _COMPARERS.get(event.action)
        if compare is not None:
            view.comparison = compare[0](payload, previous.get(event.seq))
        view.changes = _changes(event.action, payload, names)
        paired = _paired(payload)
        for key, value in payload.items():
            if key in paired or not _shown(event.action, key):
                continue
            one = field_of(event.action, key)
            text = _plain(value, one, key, names)
            if text is None:
                continue
            view.details.append(Detail(
                _label(one, key), text, key,
                str(value) if key in household_keys and isinstance(value, int) else None))
        views.append(view)
    return views
