"""How the audit trail reads the events of ballots: the answers before and after a re-vote
or a correction side by side, item by item, and the ballots' fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.audit.presenting import (
    Comparison,
    Field,
    describe_comparison,
    describe_fields,
    prepare_comparisons,
)
from consult.ballots.explain import CHOICE_LABELS
from consult.ballots.models import BALLOT_CHANNEL_LABELS
from consult.consultations.models import Item
from consult.extensions import db

# The events that record a ballot's answers as they then stand.
ANSWERING = ("ballot.cast", "ballot.changed")


def _load_item_titles(payloads: Sequence[Mapping[str, Any]]) -> None:
    """The item titles of every consultation the page's ballots belong to, in one statement."""
    cache: dict[int, dict[str, str]] = g.setdefault("audit_item_titles", {})
    wanted = {p["consultation_id"] for p in payloads
              if isinstance(p.get("consultation_id"), int)} - cache.keys()
    if not wanted:
        return
    cache.update({one: {} for one in wanted})
    for consultation_id, number, title in db.session.execute(
            select(Item.consultation_id, Item.number, Item.title)
            .where(Item.consultation_id.in_(wanted))):
        cache[consultation_id][str(number)] = title


def _item_titles(consultation_id: int) -> dict[str, str]:
    """Item number (as in the payloads) → title, once per request and consultation."""
    _load_item_titles([{"consultation_id": consultation_id}])
    return g.audit_item_titles[consultation_id]


def _choice(value: Any) -> str:
    if value is None:
        return "—"
    label = CHOICE_LABELS.get(str(value))
    return str(label) if label is not None else str(value)


def _rows(consultation_id: Any, before: Mapping[str, Any] | None,
          after: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    titles = _item_titles(consultation_id) if isinstance(consultation_id, int) else {}
    numbers = sorted({*(before or {}), *after}, key=lambda n: (len(n), n))
    return [(_("%(number)s. %(title)s", number=number, title=titles[number])
             if number in titles else number,
             _choice((before or {}).get(number)) if before is not None else "",
             _choice(after.get(number))) for number in numbers]


def answers_changed(payload: Mapping[str, Any], previous: Mapping[str, Any] | None
                    ) -> Comparison | None:
    """A ballot's answers against those of its previous version (none for the first)."""
    after = payload.get("choices")
    if not isinstance(after, dict):
        return None
    before = previous.get("choices") if previous is not None else None
    before = before if isinstance(before, dict) else None
    return Comparison(_rows(payload.get("consultation_id"), before, after), before is not None)


def answers_corrected(payload: Mapping[str, Any], previous: Mapping[str, Any] | None
                      ) -> Comparison | None:
    """A correction records the answers it replaced (open ballots only)."""
    before, after = payload.get("choices_before"), payload.get("choices")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    return Comparison(_rows(payload.get("consultation_id"), before, after), True)


prepare_comparisons(_load_item_titles)
describe_comparison("ballot.cast", answers_changed)
describe_comparison("ballot.changed", answers_changed, previous=ANSWERING)
describe_comparison("ballot.corrected", answers_corrected)
describe_fields({"choices": Field(_l("Answers"), hidden=True),
                 "choices_before": Field(_l("Answers"), hidden=True)},
                actions=[*ANSWERING, "ballot.corrected"])
_BALLOT_ACTIONS = [*ANSWERING, "ballot.corrected", "ballot.entry_recorded",
                   "ballot.entries_decided", "ballot.authorisation_attached"]
describe_fields({"channel": Field(_l("Channel"), values=BALLOT_CHANNEL_LABELS)},
                actions=_BALLOT_ACTIONS)
describe_fields({
    "owner": Field(_l("Owner token"), hidden=True),
    "version": Field(_l("Version")),
    "serial": Field(_l("Serial number")),
    "proxy": Field(_l("By proxy")),
    "cast_at": Field(_l("Cast at")),
    "entry": Field(_l("Entry")),
    "first": Field(_l("First entry")),
    "entries": Field(_l("Entries")),
    "chosen": Field(_l("Entry chosen")),
    "from_paper": Field(_l("As the deciding member read the paper")),
    "note": Field(_l("Note")),
    "source": Field(_l("Source")),
    "correction": Field(_l("Correction")),
    "matches": Field(_l("Matches the first entry")),
    "counted": Field(_l("Counted")),
    "corrected_by": Field(_l("Entered by"), refers_to="user_account"),
    "households": Field(_l("Households")),
    "owners": Field(_l("Owners")),
    "passed": Field(_l("Passed")),
    "new": Field(_l("New")),
    "changed": Field(_l("Changed")),
    "awaiting_second": Field(_l("Waiting for a second entry")),
    "differs": Field(_l("Entries differ")),
    "awaiting_authorisation": Field(_l("Waiting for a written authorisation")),
    "unsettled": Field(_l("Paper ballots not settled yet")),
    "failures": Field(_l("Failures")),
    "until": Field(_l("Until")),
    "client": Field(_l("Device"), hidden=True),
})
