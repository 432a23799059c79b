"""Reminders for the channels a compound's committee really uses: a message to paste into the
compound's WeChat group, and an A4 poster for the notice board.

Both are made while a stage waits for households — opinions collected, the vote open, a
notice up for objections, the works up for rating — in the consultation's own language
(whoever asks for them, in whichever language they read the site), with links on the public
address. They only read: nothing is written and nothing is audited, as for a printed notice.
Neither names a household: only how many have taken part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_skeleton, format_time
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select

from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChoice, RollEntry
from consult.ballots.tally import Choice
from consult.consultations.models import Consultation, Opinion
from consult.consultations.states import Stage
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.core.times import LOCAL
from consult.extensions import db
from consult.implementation.service import evaluation_tally
from consult.notices import pdf
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind
from consult.process import printing

# The stages in which households are asked to do something, and so may be reminded.
REMINDER_STAGES = (Stage.SOLICITING, Stage.VOTING, Stage.RESOLUTION_PUBLIC, Stage.RESULT_PUBLIC)

# What the poster's headline says is open, per stage (big type: a few words).
HEADLINES = {
    Stage.SOLICITING: _l("We want your opinion"),
    Stage.VOTING: _l("Voting is open"),
    Stage.RESOLUTION_PUBLIC: _l("Resolution on public notice"),
    Stage.RESULT_PUBLIC: _l("Rate the works"),
}


@dataclass(frozen=True)
class Reminder:
    """What a reminder says, as plain values in the consultation's language."""

    consultation_id: int
    stage: Stage
    locale: str
    compound: str
    title: str
    deadline: datetime | None
    deadline_text: str  # the deadline as people read it, with the weekday ("" without one)
    took_part: int
    out_of: int
    url: str  # where households take part, on the public address
    message: str  # the WeChat message, lines joined with "\n"


_UNLOADED: Any = object()  # the stage's notice has not been looked up yet


def _notice_for(consultation: Consultation, stage: Stage, notice: Any = _UNLOADED
                ) -> Notice | None:
    """The notice in force of a notice's stage (``notice``, when the caller has it already)."""
    kind = {Stage.RESOLUTION_PUBLIC: NoticeKind.RESOLUTION,
            Stage.RESULT_PUBLIC: NoticeKind.RESULT}.get(stage)
    if kind is None:
        return None
    if notice is _UNLOADED:
        return notices.current_notice(consultation, kind)
    return notice if notice is None or notice.kind == kind.value else None


def is_open(consultation: Consultation, now: datetime | None = None,
            notice: Any = _UNLOADED) -> bool:
    """Whether a stage waiting for households is open now (and so a reminder makes sense)."""
    now = now or utcnow()
    stage = consultation.stage_enum
    if stage is Stage.SOLICITING:
        deadline = consultation.solicitation_deadline
        return deadline is None or now < deadline
    if stage is Stage.VOTING:
        return consultation.vote_is_open(now)
    found = _notice_for(consultation, stage, notice)
    return found is not None and notices.in_period(found, now)


def _deadline(consultation: Consultation, stage: Stage, notice: Notice | None
              ) -> datetime | None:
    if stage is Stage.SOLICITING:
        return consultation.solicitation_deadline
    if stage is Stage.VOTING:
        return consultation.vote_deadline
    return notice.period_ends_at if notice else None


def deadline_text(value: datetime, *, year: bool = False) -> str:
    """A deadline as a neighbour reads it, in Beijing time and the current language, with its
    weekday: 12月14日周一 17:00 · 12月14日週一 17:00 · Mon 14 Dec, 17:00."""
    locale = str(get_locale() or "zh_Hans")
    clock = format_time(value, "HH:mm", tzinfo=LOCAL, locale=locale)
    if locale == "en":
        # Babel's English skeletons are American (Dec 14); the site writes 14 Dec elsewhere.
        day = value.astimezone(LOCAL).strftime("%a %-d %b" + (" %Y" if year else ""))
        return f"{day}, {clock}"
    day = format_skeleton("yMMMEd" if year else "MMMEd", value, tzinfo=LOCAL, locale=locale)
    return f"{day} {clock}"


def participation(consultation: Consultation, stage: Stage, notice: Any = _UNLOADED
                  ) -> tuple[int, int]:
    """(households that took part, households asked) for the stage: opinions given, ballots
    returned, the counted vote's turnout (for its resolution), works rated. One statement for
    the opinions and the vote (the page of a consultation counts its statements)."""
    if stage is Stage.SOLICITING:
        gave = (select(func.count(func.distinct(Opinion.household_id)))
                .where(Opinion.consultation_id == consultation.id,
                       Opinion.withdrawn_at.is_(None)).scalar_subquery())
        asked = (select(func.count()).select_from(
            ballots.households_in_scope(consultation).subquery()).scalar_subquery())
        return _pair(select(gave, asked))
    if stage is Stage.VOTING:
        voted = select(func.count(Ballot.id)).where(Ballot.consultation_id == consultation.id,
                                                    Ballot.round == consultation.round)
        if consultation.rule_code == "survey":
            # A survey ballot of nothing but "not reached" is no participation (the tally's rule).
            voted = voted.where(exists().where(BallotChoice.ballot_id == Ballot.id,
                                               BallotChoice.choice != Choice.NOT_REACHED.value))
        roll = select(func.count(RollEntry.id)).where(
            RollEntry.consultation_id == consultation.id, RollEntry.round == consultation.round)
        return _pair(select(voted.scalar_subquery(), roll.scalar_subquery()))
    if stage is Stage.RESOLUTION_PUBLIC:
        # The turnout the resolution notice froze with its tally.
        found = _notice_for(consultation, stage, notice)
        tally = notices.content_of(found).get("tally") or {} if found else {}
        return (int(tally.get("participation", {}).get("households", 0)),
                int(tally.get("roll", {}).get("households", 0)))
    rated = evaluation_tally(consultation)
    return int(rated["rated"]), int(rated["roll_households"])


def _pair(stmt: Any) -> tuple[int, int]:
    """The two counts a statement of two scalar subqueries returns."""
    row = db.session.execute(stmt).one()
    return int(row[0] or 0), int(row[1] or 0)


def _url(consultation: Consultation, stage: Stage, notice: Notice | None) -> str:
    """Where a household takes part in the stage, on the public address."""
    if stage is Stage.SOLICITING:
        return printing.link("consultations.opinion_new", consultation_id=consultation.id)
    if stage is Stage.VOTING:
        return printing.link("ballots.vote", consultation_id=consultation.id)
    if stage is Stage.RESULT_PUBLIC:
        return printing.link("implementation.evaluate", consultation_id=consultation.id)
    assert notice is not None  # is_open checked it
    return printing.link("notices.show", notice_id=notice.id)


def _message(stage: Stage, compound: str, title: str, when: str, done: int, total: int,
             url: str) -> str:
    """The WeChat message, line by line; every line a sentence of its own in the catalogs."""
    lines = [_("[%(compound)s] %(title)s", compound=compound, title=title)]
    if stage is Stage.SOLICITING:
        lines.append(_("We are collecting residents' opinions until %(when)s.", when=when)
                     if when else _("We are collecting residents' opinions."))
        lines.append(_("%(done)s / %(total)s households have given their opinion so far.",
                       done=done, total=total))
        lines.append(_("Give your opinion here: %(url)s", url=url))
        lines.append(_("Neighbours without a smartphone can ask the committee or the grid "
                       "worker for a paper opinion form."))
    elif stage is Stage.VOTING:
        lines.append(_("Voting is open until %(when)s.", when=when))
        lines.append(_("%(done)s / %(total)s households have voted so far.",
                       done=done, total=total))
        lines.append(_("Vote here (one vote per household; sign in with the access code on "
                       "your letter): %(url)s", url=url))
        lines.append(_("Neighbours without a smartphone can ask the committee or the grid "
                       "worker for a paper ballot."))
    elif stage is Stage.RESOLUTION_PUBLIC:
        lines.append(_("The resolution is on public notice until %(when)s; any household may "
                       "object until then.", when=when))
        lines.append(_("%(done)s / %(total)s households took part in the vote.",
                       done=done, total=total))
        lines.append(_("Read the notice here: %(url)s", url=url))
    else:
        lines.append(_("The result of the works is on public notice until %(when)s: tell us "
                       "whether you are satisfied.", when=when))
        lines.append(_("%(done)s / %(total)s households have rated the works so far.",
                       done=done, total=total))
        lines.append(_("Rate the works here: %(url)s", url=url))
    lines.append(_("Thank you, neighbours!"))
    return "\n".join(lines)


def reminder_for(consultation: Consultation, now: datetime | None = None,
                 notice: Any = _UNLOADED) -> Reminder | None:
    """The reminder of the stage open now, in the consultation's language; None when no stage
    waits for households. ``notice``: the stage's notice in force, when the caller has it."""
    stage = consultation.stage_enum
    if stage not in REMINDER_STAGES:
        return None
    notice = _notice_for(consultation, stage, notice)
    if not is_open(consultation, now, notice):
        return None
    deadline = _deadline(consultation, stage, notice)
    done, total = participation(consultation, stage, notice)
    with printing.document_language(consultation.locale):
        url = _url(consultation, stage, notice)
        when = deadline_text(deadline) if deadline else ""
        compound = consultation.compound.name
        message = _message(stage, compound, consultation.title, when, done, total, url)
    return Reminder(consultation.id, stage, consultation.locale, compound, consultation.title,
                    deadline, when, done, total, url, message)


def reminder_or_409(consultation: Consultation, now: datetime | None = None) -> Reminder:
    """The reminder of the stage open now; Conflict when none waits for households."""
    found = reminder_for(consultation, now)
    if found is None:
        raise Conflict(_("Reminders are made while opinions are collected, the vote is open or "
                         "a notice is up; this consultation is not at such a stage now."))
    return found


# --- the poster -------------------------------------------------------------------------------


def poster_file(consultation: Consultation, now: datetime | None = None) -> pdf.Stored:
    """The notice-board poster of the stage open now, as a stored PDF: laid out once for as
    long as what it says stays the same (it shows no counts, which change by the minute)."""
    reminder = reminder_or_409(consultation, now)
    stage = reminder.stage
    with printing.document_language(consultation.locale):
        html = pdf.page_html("pdf/poster.html", consultation.locale, **_poster_context(
            consultation, reminder))
    return pdf.render_stored(f"poster-{consultation.id}-{stage.value}", html)


def _poster_context(consultation: Consultation, reminder: Reminder) -> dict[str, Any]:
    deadline = reminder.deadline
    return {
        "c": consultation, "r": reminder, "headline": str(HEADLINES[reminder.stage]),
        "deadline_text": deadline_text(deadline, year=True) if deadline else "",
        "community": consultation.compound.community.name,
        "address": consultation.compound.address,
        "qr": pdf.qr_svg(reminder.url, scale=10),
        "running_header": "",
    }


def poster_file_name(consultation: Consultation) -> str:
    """The name the poster is downloaded under, in the consultation's language
    ("海报-公示栏-12.pdf")."""
    with force_locale(consultation.locale):
        return f"{_('Notice-board poster')}-{consultation.id}.pdf"
