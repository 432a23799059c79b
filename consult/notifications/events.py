"""The events that notify people: their codes, labels and texts.

A notification stores its event code and plain parameters; its text is written here when it
is shown or sent, in the reader's language. Parameters are strings and numbers only (times as
ISO strings), so a row written today still reads after the texts change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from consult.consultations.states import Stage, stage_label
from consult.core.times import format_datetime

STAGE_OPENED = "stage_opened"
VOTE_CLOSING = "vote_closing"
BALLOT_CORRECTED = "ballot_corrected"
OBJECTION_ANSWERED = "objection_answered"
DEFECT_REPORT_CHANGED = "defect_report_changed"
STAFF_TODO = "staff_todo"

# Every event, in the order the preferences page lists them.
EVENT_LABELS: dict[str, Any] = {
    STAGE_OPENED: _l("A consultation opens a stage that needs your household"),
    VOTE_CLOSING: _l("A vote closes within 48 hours and your household has not voted"),
    BALLOT_CORRECTED: _l("The committee corrected your household's ballot"),
    OBJECTION_ANSWERED: _l("Your objection was answered"),
    DEFECT_REPORT_CHANGED: _l("A defect report of your household moved on"),
    STAFF_TODO: _l("New work on your to-do list"),
}
# Events a household receives, and those staff receive.
HOUSEHOLD_EVENTS = (STAGE_OPENED, VOTE_CLOSING, BALLOT_CORRECTED, OBJECTION_ANSWERED,
                    DEFECT_REPORT_CHANGED)
STAFF_EVENTS = (STAFF_TODO,)

# Stages that ask something of every household in scope, and what they ask.
STAGE_ASKS: dict[Stage, Any] = {
    Stage.SOLICITING: _l("Opinions are being collected: tell the committee what you think."),
    Stage.DISCUSSING: _l("The proposal is up for discussion: read it and comment."),
    Stage.VOTING: _l("The vote is open until %(deadline)s: cast your household's ballot."),
    Stage.RESOLUTION_PUBLIC: _l("The resolution notice is published: you may object until "
                                "%(deadline)s."),
    Stage.RESULT_PUBLIC: _l("The result notice is published: you may object until "
                            "%(deadline)s."),
}

TODO_TEXTS: dict[str, Any] = {
    "objections": _l("Objections await an answer."),
    "vote_closing": _l("The vote closes within 48 hours."),
    "papers": _l("Paper ballots await their second entry or a decision."),
    "overdue": _l("A deadline has passed: the next step is due."),
    "no_final_report": _l("The works have no final report yet."),
    "defects": _l("Defect reports of the finished works await the committee."),
}

# What a household is told when its defect report reaches a state (feedback/states.py).
DEFECT_STATE_TEXTS: dict[str, Any] = {
    "open": _l("The report was received; the committee will look at it."),
    "accepted": _l("The committee accepted the report and will arrange the repair."),
    "rejected": _l("The committee did not accept the report; its reason is on the report's "
                   "page."),
    "assigned": _l("The repair is assigned, with a due day, on the report's page."),
    "fixed": _l("The committee says it is fixed: look, then confirm or reopen the report."),
    "confirmed": _l("The fix is confirmed; the report is closed."),
}


def _when(value: Any) -> str:
    if not value:
        return "—"
    return format_datetime(datetime.fromisoformat(str(value)), "short")


def title(event: str, params: Mapping[str, Any]) -> str:
    """The headline of a notification, in the current language."""
    name = str(params.get("consultation", ""))
    if event == STAGE_OPENED:
        return _("%(title)s: %(stage)s", title=name, stage=stage_label(Stage(params["stage"])))
    if event == VOTE_CLOSING:
        return _("%(title)s: the vote closes soon", title=name)
    if event == BALLOT_CORRECTED:
        return _("%(title)s: your ballot was corrected", title=name)
    if event == OBJECTION_ANSWERED:
        return _("%(title)s: your objection was answered", title=name)
    if event == DEFECT_REPORT_CHANGED:
        return _("%(title)s: defect report no. %(number)s", title=name,
                 number=params.get("report", ""))
    if event == STAFF_TODO:
        return _("To do: %(title)s", title=name)
    return str(params.get("title", event))


def body(event: str, params: Mapping[str, Any]) -> str:
    """The sentence under the headline, in the current language."""
    if event == STAGE_OPENED:
        ask = STAGE_ASKS.get(Stage(params["stage"]))
        return str(ask) % {"deadline": _when(params.get("deadline"))} if ask else ""
    if event == VOTE_CLOSING:
        return _("The vote closes at %(deadline)s and your household has not voted yet.",
                 deadline=_when(params.get("deadline")))
    if event == BALLOT_CORRECTED:
        return _("The committee entered a correction of your household's ballot with its "
                 "reason and evidence. Check it on the consultation's page.")
    if event == OBJECTION_ANSWERED:
        return _("The committee answered your objection publicly on the notice.")
    if event == DEFECT_REPORT_CHANGED:
        text = DEFECT_STATE_TEXTS.get(str(params.get("state")))
        return str(text) if text else ""
    if event == STAFF_TODO:
        text = TODO_TEXTS.get(str(params.get("kind")))
        return str(text) if text else ""
    return str(params.get("body", ""))
