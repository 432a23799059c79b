"""Consultations and their proposal: settings, scope, items and numbered revisions.

Every function flushes (never commits) and records its audit event. Stages are never set
here: that is ``workflow.apply``'s job.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, bindparam, false, func, or_, select
from sqlalchemy.orm import joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.ballots.tally import PRESETS, BadFraction, Rule
from consult.consultations.models import (
    Comment,
    Consultation,
    ConsultationScope,
    Item,
    Revision,
    Secrecy,
    item_attachment,
)
from consult.consultations.states import (
    EDITABLE_PROPOSAL_STAGES,
    FINAL_STAGES,
    PUBLIC_STAGES,
    Stage,
)
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.i18n import SUPPORTED_LOCALES
from consult.core.markup import markdown_lines
from consult.core.models import utcnow
from consult.core.times import out_of_range_message, plausible
from consult.core.validation import enum_member, field_text
from consult.extensions import db
from consult.registry.models import Building, Compound, Household

describe({
    "consultation.created": _l("Consultation created"),
    "consultation.updated": _l("Consultation settings changed"),
    "consultation.scope_set": _l("Consultation scope set"),
    "consultation.item_added": _l("Item added"),
    "consultation.item_updated": _l("Item changed"),
    "consultation.item_removed": _l("Item removed"),
}, kind="settings")
describe({"consultation.stage_changed": _l("Stage changed")}, kind="stages")
describe_kinds({"settings": _l("Consultation settings"), "stages": _l("Stage steps")})
describe_objects({"item": _l("Item")})

MAX_COST_FEN = 100_000_000_000  # ¥1,000,000,000: far above any compound's works
_MONEY = re.compile(r"^\d+(\.\d{1,2})?$")


# --- values -----------------------------------------------------------------------------------


def parse_money(text: str | None, what: str) -> int:
    """'12,500.50' (yuan) → 1250050 (分). Raises ValueError with a message."""
    cleaned = (text or "").strip().replace(",", "").replace("，", "").removeprefix("¥")
    cleaned = cleaned.removesuffix("元").strip()
    if not cleaned:
        return 0
    if not _MONEY.match(cleaned):
        raise ValueError(_("%(what)s must be an amount in yuan with at most two decimals.",
                           what=what))
    try:
        fen = int(Decimal(cleaned) * 100)
    except InvalidOperation:
        raise ValueError(_("%(what)s must be an amount in yuan.", what=what)) from None
    if fen > MAX_COST_FEN:
        raise ValueError(_("%(what)s is implausibly large.", what=what))
    return fen


def format_money(fen: int | None) -> str:
    """1250050 → '12,500.50' (yuan)."""
    if fen is None:
        return ""
    return f"{fen // 100:,}.{fen % 100:02d}"


@dataclass(frozen=True)
class Settings:
    """A consultation's editable settings, validated."""

    title: str
    summary: str
    rule: Rule
    secrecy: Secrecy
    locale: str
    solicitation_deadline: datetime | None
    vote_deadline: datetime | None
    publicity_days: int
    proxy_cap: int | None
    # Paper ballots entered twice: None follows the rule (on for the Civil Code's rules).
    double_entry: bool | None = None
    proxy_document_required: bool = False


def settings(*, title: str | None, summary: str | None, rule_code: str | None,
             rule_json: str | None = None, secrecy: str | None, locale: str | None,
             solicitation_deadline: datetime | None, vote_deadline: datetime | None,
             publicity_days: int | None, proxy_cap: int | None,
             double_entry: bool | None = None,
             proxy_document_required: bool = False) -> Settings:
    """Validate raw settings. A ``rule_code`` of "custom" takes the conditions of ``rule_json``.
    ``double_entry`` None means as the rule says (on for the Civil Code's rules).

    Raises ValidationFailed with messages per field.
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, value, what, limit, required in (
            ("title", title, _("Title"), 200, True),
            ("summary", summary, _("Summary"), 20000, False)):
        try:
            values[name] = field_text(value, field=name, what=what, max_length=limit,
                                      required=required, multiline=name == "summary")
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if rule_code == "custom":
        try:
            values["rule"] = Rule.from_json(rule_json or "")
            values["rule"] = Rule("custom", values["rule"].conditions)
        except BadFraction as exc:
            errors["rule_json"] = [_("“%(fraction)s” is not a fraction from 0 to 1: write it "
                                     "like 2/3 or 0.5, with a denominator that is not 0.",
                                     fraction=exc.text.strip()[:20])]
        except (ValueError, KeyError, TypeError):
            errors["rule_json"] = [_("The local rule could not be read.")]
    elif rule_code in PRESETS:
        values["rule"] = PRESETS[rule_code]
    else:
        errors["rule_code"] = [_("Choose a decision rule.")]
    try:
        values["secrecy"] = enum_member(Secrecy, secrecy)
    except ValueError:
        errors["secrecy"] = [_("Choose whether the ballot is open or confidential.")]
    values["locale"] = locale if locale in SUPPORTED_LOCALES else "zh_Hans"
    for name, deadline in (("solicitation_deadline", solicitation_deadline),
                           ("vote_deadline", vote_deadline)):
        if deadline is not None and not plausible(deadline):
            errors[name] = [out_of_range_message()]
        values[name] = deadline
    if publicity_days is None or not 1 <= publicity_days <= 90:
        errors["publicity_days"] = [_("The publicity period is 1 to 90 days.")]
    values["publicity_days"] = publicity_days
    if proxy_cap is not None and not 1 <= proxy_cap <= 100:
        errors["proxy_cap"] = [_("Leave empty for no limit, or give 1 to 100 households.")]
    values["proxy_cap"] = proxy_cap
    values["double_entry"] = double_entry
    values["proxy_document_required"] = bool(proxy_document_required)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return Settings(**values)


# --- revisions --------------------------------------------------------------------------------


def snapshot(consultation: Consultation) -> dict[str, Any]:
    """The proposal as it stands: title, summary and items."""
    return {
        "title": consultation.title,
        "summary": consultation.summary,
        "items": [_item_snapshot(i) for i in consultation.items],
    }


def _item_snapshot(item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {"number": item.number, "title": item.title,
                             "description": item.description,
                             "estimated_cost_fen": item.estimated_cost_fen}
    if item.cost_split_by_area:  # only when set, so that earlier revisions still compare equal
        entry["cost_split_by_area"] = True
    return entry


def _record_revision(actor: Any, consultation: Consultation, note: str) -> Revision | None:
    """Store a new numbered revision if the proposal differs from the latest one."""
    db.session.flush()
    db.session.expire(consultation, ["items"])
    text = json.dumps(snapshot(consultation), ensure_ascii=False, sort_keys=True)
    latest = latest_revision(consultation)
    if latest is not None and latest.snapshot == text:
        return None
    revision = Revision(consultation_id=consultation.id,
                        number=(latest.number + 1) if latest else 1, snapshot=text,
                        note=note[:300], author_id=getattr(actor, "id", None))
    db.session.add(revision)
    db.session.flush()
    return revision


def latest_revision(consultation: Consultation) -> Revision | None:
    return db.session.scalar(select(Revision).where(Revision.consultation_id == consultation.id)
                             .order_by(Revision.number.desc()).limit(1))


def revisions(consultation: Consultation) -> list[Revision]:
    return list(db.session.scalars(select(Revision).where(
        Revision.consultation_id == consultation.id).order_by(Revision.number.desc())))


def revision_lines(revision: Revision | None) -> list[str]:
    """A revision as plain lines, the form diffs are taken on.

    Summary and descriptions are Markdown: they are compared as readers see them, so a diff
    shows text, not emphasis marks or list dashes.
    """
    if revision is None:
        return []
    data = json.loads(revision.snapshot)
    lines = [f"# {data['title']}", *markdown_lines(data["summary"]), ""]
    for item in data["items"]:
        cost = format_money(item["estimated_cost_fen"])
        lines.append(f"## {item['number']}. {item['title']}  (¥{cost})")
        if item.get("cost_split_by_area"):
            lines.append(_("The cost is shared by the households in proportion to their "
                           "floor area."))
        lines.extend(markdown_lines(item["description"]))
        lines.append("")
    return lines


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added", "removed", "gap"
    text: str


def diff(older: Revision | None, newer: Revision) -> list[DiffLine]:
    """What changed from ``older`` to ``newer``, line by line with a little context."""
    out: list[DiffLine] = []
    for line in difflib.unified_diff(revision_lines(older), revision_lines(newer), n=2,
                                     lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(DiffLine("gap", "…"))
        elif line.startswith("+"):
            out.append(DiffLine("added", line[1:]))
        elif line.startswith("-"):
            out.append(DiffLine("removed", line[1:]))
        else:
            out.append(DiffLine("same", line[1:]))
    return out


def get_revision_or_404(consultation: Consultation, number: int) -> Revision:
    revision = db.session.scalar(select(Revision).where(
        Revision.consultation_id == consultation.id, Revision.number == number))
    if revision is None:
        raise NotFound(_("No such revision."))
    return revision


def previous_revision(revision: Revision) -> Revision | None:
    return db.session.scalar(select(Revision).where(
        Revision.consultation_id == revision.consultation_id,
        Revision.number == revision.number - 1))


# --- consultations ----------------------------------------------------------------------------


def _check_deadlines(values: Settings, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if values.solicitation_deadline and values.solicitation_deadline <= now:
        errors["solicitation_deadline"] = [_("The deadline must lie in the future.")]
    if values.vote_deadline and values.vote_deadline <= now:
        errors["vote_deadline"] = [_("The deadline must lie in the future.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)


def create(actor: Any, compound: Compound, values: Settings, now: datetime | None = None
           ) -> Consultation:
    """A new consultation, in draft, for a whole compound (narrow it with ``set_scope``)."""
    _check_deadlines(values, now or utcnow())
    consultation = Consultation(
        compound=compound, title=values.title, summary=values.summary, rule_code=values.rule.code,
        rule_json=values.rule.to_json(), secrecy=values.secrecy.value, locale=values.locale,
        solicitation_deadline=values.solicitation_deadline, vote_deadline=values.vote_deadline,
        publicity_days=values.publicity_days, proxy_cap=values.proxy_cap,
        double_entry=values.double_entry,
        proxy_document_required=values.proxy_document_required,
        created_by_id=getattr(actor, "id", None), round=1)  # starts as a draft
    db.session.add(consultation)
    db.session.flush()
    audit.record(actor, "consultation.created", consultation, {
        "title": values.title, "rule": json.loads(values.rule.to_json()),
        "secrecy": values.secrecy.value})
    _record_revision(actor, consultation, "")
    return consultation


def update(actor: Any, consultation: Consultation, values: Settings,
           now: datetime | None = None) -> Consultation:
    """Change a consultation's settings; the rule, secrecy and deadlines freeze when the vote
    opens (a running vote's deadline may only move later)."""
    stage = consultation.stage_enum
    if stage in (Stage.CLOSED, Stage.WITHDRAWN):
        raise Conflict(_("A closed or withdrawn consultation can no longer change."))
    now = now or utcnow()
    voting_started = consultation.vote_opened_at is not None
    changes: dict[str, Any] = {}

    def change(name: str, new: Any, stored: Any = None) -> None:
        old = getattr(consultation, name)
        stored = new if stored is None else stored
        if old != stored:
            changes[name] = {"from": old, "to": stored}
            setattr(consultation, name, stored)

    if stage in EDITABLE_PROPOSAL_STAGES:
        change("title", values.title)
        change("summary", values.summary)
    elif (values.title, values.summary) != (consultation.title, consultation.summary):
        raise Conflict(_("The proposal cannot change once voting has started."),
                       field="title" if values.title != consultation.title else "summary")
    rule_changed = (values.rule.to_json() != consultation.rule_json
                    or values.secrecy.value != consultation.secrecy)
    if voting_started and rule_changed:
        raise Conflict(_("The decision rule and the ballot secrecy are fixed once voting has "
                         "started."),
                       field="secrecy" if values.secrecy.value != consultation.secrecy
                       else "rule_code")
    entering_changed = ((values.double_entry, values.proxy_document_required)
                        != (consultation.double_entry, consultation.proxy_document_required))
    if voting_started and entering_changed:
        raise Conflict(_("How paper ballots are entered is fixed once voting has started."),
                       field="double_entry" if values.double_entry != consultation.double_entry
                       else "proxy_document_required")
    change("double_entry", values.double_entry)
    change("proxy_document_required", values.proxy_document_required)
    change("rule_code", values.rule.code)
    change("rule_json", values.rule.to_json())
    change("secrecy", values.secrecy.value)
    change("locale", values.locale)
    change("publicity_days", values.publicity_days)
    change("proxy_cap", values.proxy_cap)
    if values.solicitation_deadline != consultation.solicitation_deadline:
        if values.solicitation_deadline and values.solicitation_deadline <= now:
            raise ValidationFailed(_("The deadline must lie in the future."), {
                "solicitation_deadline": [_("The deadline must lie in the future.")]})
        change("solicitation_deadline", values.solicitation_deadline)
    if values.vote_deadline != consultation.vote_deadline:
        _check_vote_deadline(consultation, values.vote_deadline, now)
        change("vote_deadline", values.vote_deadline)
    if not changes:
        return consultation
    db.session.flush()
    audit.record(actor, "consultation.updated", consultation, {"changes": changes})
    if {"title", "summary"} & set(changes):
        _record_revision(actor, consultation, "")
    return consultation


# The settings form's fields, as ``frozen_settings`` names them.
SETTING_FIELDS = ("title", "summary", "rule_code", "conditions", "secrecy", "locale",
                  "solicitation_deadline", "vote_deadline", "publicity_days", "proxy_cap",
                  "double_entry", "proxy_document_required")


def frozen_settings(consultation: Consultation, now: datetime | None = None) -> dict[str, str]:
    """The settings that can no longer change, each with the reason (what ``update`` refuses
    to change): the settings page shows them read-only with it."""
    stage = consultation.stage_enum
    if stage in FINAL_STAGES:
        reason = _("A closed or withdrawn consultation can no longer change.")
        return dict.fromkeys(SETTING_FIELDS, reason)
    frozen: dict[str, str] = {}
    if stage not in EDITABLE_PROPOSAL_STAGES:
        frozen.update(dict.fromkeys(("title", "summary"),
                                    _("The proposal cannot change once voting has started.")))
    if consultation.vote_opened_at is not None:
        frozen.update(dict.fromkeys(("rule_code", "conditions", "secrecy"), _(
            "The decision rule and the ballot secrecy are fixed once voting has started.")))
        frozen.update(dict.fromkeys(("double_entry", "proxy_document_required"), _(
            "How paper ballots are entered is fixed once voting has started.")))
        if not consultation.vote_is_open(now or utcnow()):
            frozen["vote_deadline"] = _("The vote of this round is closed.")
    return frozen


def _check_vote_deadline(consultation: Consultation, deadline: datetime | None,
                         now: datetime) -> None:
    """Before the vote the deadline is free (it may stay empty for now); a running vote's
    deadline may only move later; a closed vote's not at all."""
    message = None
    running = consultation.vote_opened_at is not None
    if running and not consultation.vote_is_open(now):
        message = _("The vote of this round is closed.")
    elif deadline is None:
        message = _("A running vote needs a deadline.") if running else None
    elif deadline <= now:
        message = _("The deadline must lie in the future.")
    elif running and consultation.vote_deadline and deadline < consultation.vote_deadline:
        message = _("A running vote's deadline can only be extended.")
    if message:
        raise ValidationFailed(message, {"vote_deadline": [message]})


def scope_frozen(consultation: Consultation) -> str | None:
    """Why the scope can no longer change, or None while it can."""
    if consultation.vote_opened_at is not None or consultation.stage_enum not in (
            EDITABLE_PROPOSAL_STAGES):
        return _("The scope is fixed once voting has started.")
    return None


def set_scope(actor: Any, consultation: Consultation,
              parts: Sequence[tuple[int, str | None]]) -> None:
    """Limit the consultation to some buildings or units (e.g. one stairwell for a lift).

    An empty list means the whole compound. Fixed once the vote has opened.
    """
    frozen = scope_frozen(consultation)
    if frozen:
        raise Conflict(frozen, field="parts")
    buildings = {b.id: b for b in db.session.scalars(select(Building).where(
        Building.compound_id == consultation.compound_id))}
    wanted = []
    for building_id, unit in parts:
        if building_id not in buildings:
            raise ValidationFailed(_("Choose buildings of this consultation's compound."))
        wanted.append((building_id, (unit or "").strip()[:20] or None))
    consultation.scopes.clear()
    db.session.flush()
    consultation.scopes.extend(ConsultationScope(building_id=b, unit=u)
                               for b, u in dict.fromkeys(wanted))
    db.session.flush()
    audit.record(actor, "consultation.scope_set", consultation, {
        "parts": [{"building": buildings[b].name, "unit": u} for b, u in dict.fromkeys(wanted)]})


def household_in_scope(consultation: Consultation, household: Any) -> bool:
    """Whether a household is among those the consultation concerns."""
    if household.building.compound_id != consultation.compound_id:
        return False
    if not consultation.scopes:
        return True
    return any(s.building_id == household.building_id and s.unit in (None, household.unit)
               for s in consultation.scopes)


def units_by_building(compound: Compound) -> list[tuple[Building, list[str]]]:
    """Each building of a compound with the units its households are in."""
    rows = db.session.execute(
        select(Building, Household.unit).join(Household, Household.building_id == Building.id)
        .where(Building.compound_id == compound.id).distinct()
        .order_by(Building.sort_key, Household.unit)).all()
    grouped: dict[int, tuple[Building, list[str]]] = {}
    for building, unit in rows:
        grouped.setdefault(building.id, (building, []))[1].append(unit)
    return list(grouped.values())


def scope_text(consultation: Consultation) -> str:
    """'3号楼 2单元, 5号楼' or the compound's name when it concerns all of it."""
    if not consultation.scopes:
        return _("all of %(compound)s", compound=consultation.compound.name)
    parts = []
    for scope in consultation.scopes:
        parts.append(_("%(building)s, unit %(unit)s", building=scope.building.name,
                       unit=scope.unit) if scope.unit else scope.building.name)
    return ", ".join(parts)


# --- items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemData:
    title: str
    description: str
    estimated_cost_fen: int
    # Paid by the households in scope in proportion to their floor area.
    cost_split_by_area: bool = False


def item_data(*, title: str | None, description: str | None, cost: str | None,
              split_by_area: bool = False) -> ItemData:
    """Validate an item's fields; raises ValidationFailed per field."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, value, what, limit, required in (
            ("title", title, _("Title"), 200, True),
            ("description", description, _("Description"), 20000, False)):
        try:
            values[name] = field_text(value, field=name, what=what, max_length=limit,
                                      required=required, multiline=name == "description")
        except ValidationFailed as exc:
            errors.update(exc.errors)
    try:
        values["estimated_cost_fen"] = parse_money(cost, _("The estimated cost"))
    except ValueError as exc:
        errors["cost"] = [str(exc)]
    values["cost_split_by_area"] = bool(split_by_area)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return ItemData(**values)


def check_proposal_editable(consultation: Consultation) -> None:
    """Raise Conflict once voting has started: the proposal put to the vote is fixed."""
    if consultation.stage_enum not in EDITABLE_PROPOSAL_STAGES:
        raise Conflict(_("The proposal cannot change once voting has started."))


def add_item(actor: Any, consultation: Consultation, data: ItemData, note: str = "") -> Item:
    """Append an item to the proposal; a new revision records the change."""
    check_proposal_editable(consultation)
    number = (db.session.scalar(select(func.max(Item.number)).where(
        Item.consultation_id == consultation.id)) or 0) + 1
    item = Item(consultation_id=consultation.id, number=number, title=data.title,
                description=data.description, estimated_cost_fen=data.estimated_cost_fen,
                cost_split_by_area=data.cost_split_by_area)
    db.session.add(item)
    db.session.flush()
    audit.record(actor, "consultation.item_added", item, {
        "number": number, "title": data.title, "estimated_cost_fen": data.estimated_cost_fen,
        "cost_split_by_area": data.cost_split_by_area})
    _record_revision(actor, consultation, note)
    return item


def update_item(actor: Any, item: Item, data: ItemData, note: str = "") -> Item:
    """Change an item's text or cost; a new revision records the change."""
    check_proposal_editable(item.consultation)
    before = {"title": item.title, "description": item.description,
              "estimated_cost_fen": item.estimated_cost_fen,
              "cost_split_by_area": item.cost_split_by_area}
    after = {"title": data.title, "description": data.description,
             "estimated_cost_fen": data.estimated_cost_fen,
             "cost_split_by_area": data.cost_split_by_area}
    if before == after:
        return item
    for key, value in after.items():
        setattr(item, key, value)
    db.session.flush()
    audit.record(actor, "consultation.item_updated", item, {
        "number": item.number,
        "changes": {k: ({"from": before[k], "to": v} if k != "description" else "changed")
                    for k, v in after.items() if before[k] != v}})
    _record_revision(actor, item.consultation, note)
    return item


def remove_item(actor: Any, item: Item, note: str = "") -> None:
    """Take an item out of the proposal and renumber the rest. Items that residents have
    commented on stay (edit them instead), so no discussion is lost."""
    consultation = item.consultation
    check_proposal_editable(consultation)
    if db.session.scalar(select(func.count(Comment.id)).where(Comment.item_id == item.id)):
        raise Conflict(_("Residents have commented on this item; change its text instead of "
                         "removing it."))
    number, title = item.number, item.title
    item.opinions.clear()
    db.session.delete(item)
    db.session.flush()
    for later in db.session.scalars(select(Item).where(
            Item.consultation_id == consultation.id, Item.number > number)
            .order_by(Item.number)):
        later.number -= 1
        db.session.flush()  # one at a time keeps (consultation, number) unique throughout
    audit.record(actor, "consultation.item_removed", consultation,
                 {"number": number, "title": title})
    _record_revision(actor, consultation, note)


# --- queries ----------------------------------------------------------------------------------


# Its scopes come along: every resident page checks the household is among them. Built once:
# it is on every consultation page's path.
_CONSULTATION = (select(Consultation).options(joinedload(Consultation.scopes))
                 .where(Consultation.id == bindparam("id")))


def get_or_404(consultation_id: int) -> Consultation:
    # One already in this session is that one, as ``Session.get`` would give it.
    consultation = db.session.identity_map.get(
        db.session.identity_key(Consultation, consultation_id))
    if consultation is None:
        consultation = db.session.execute(
            _CONSULTATION, {"id": consultation_id}).unique().scalar_one_or_none()
    if consultation is None:
        raise NotFound(_("No such consultation."))
    return consultation


# The items alone, their attachments left unloaded (``Item.attachments`` loads them with the
# items everywhere else): the vote's three requests need only the items' own columns, and
# loading the attachments tripled the cost (bench/results/profile-vote.md).
_ITEMS_ONLY = (select(Item).where(Item.consultation_id == bindparam("id"))
               .order_by(Item.number).options(lazyload(Item.attachments)))
_ATTACHMENT_COUNTS = (
    select(item_attachment.c.item_id, func.count())
    .join(Item, Item.id == item_attachment.c.item_id)
    .where(Item.consultation_id == bindparam("id")).group_by(item_attachment.c.item_id))


def load_items(consultation: Consultation) -> list[Item]:
    """``consultation.items`` without their attachments (unless already loaded): for pages
    that show the items' own fields only. An item's attachments still load if asked for."""
    if "items" not in consultation.__dict__:
        set_committed_value(consultation, "items", list(db.session.scalars(
            _ITEMS_ONLY, {"id": consultation.id})))
    return consultation.items


def attachment_counts(consultation: Consultation) -> dict[int, int]:
    """How many attachments each item of ``consultation`` has (items without any absent)."""
    rows = db.session.execute(_ATTACHMENT_COUNTS, {"id": consultation.id}).all()
    return dict(cast(Sequence[tuple[int, int]], rows))


def get_item_or_404(consultation: Consultation, item_id: int) -> Item:
    item = db.session.get(Item, item_id)
    if item is None or item.consultation_id != consultation.id:
        raise NotFound(_("No such item."))
    return item


def listing(manage_scope: frozenset[int] | None, *, stage: str | None = None,
            compound_id: int | None = None, search: str = "") -> Select[Consultation]:
    """Consultations a user may see, newest first: every published one, plus drafts in the
    compounds they manage (``manage_scope`` None = everywhere). ``compound_id`` narrows the
    list to one of the compounds they manage (a compound outside ``manage_scope`` gives an
    empty list); ``search`` to titles containing it, whatever the case."""
    public = Consultation.stage.in_([s.value for s in PUBLIC_STAGES])
    visible: ColumnElement[bool]
    if manage_scope is None:
        visible = Consultation.id.isnot(None)
    elif manage_scope:
        visible = or_(public, Consultation.compound_id.in_(manage_scope))
    else:
        visible = public
    stmt = select(Consultation).where(visible).order_by(Consultation.id.desc())
    if stage:
        stmt = stmt.where(Consultation.stage == stage)
    if compound_id:
        if manage_scope is not None and compound_id not in manage_scope:
            return stmt.where(false())
        stmt = stmt.where(Consultation.compound_id == compound_id)
    if search:
        # icontains: LOWER() on both sides; Chinese has no case and is matched as typed.
        stmt = stmt.where(Consultation.title.icontains(search, autoescape=True))
    return stmt


def stage_counts(manage_scope: frozenset[int] | None, *, compound_id: int | None = None,
                 search: str = "") -> dict[str, int]:
    """How many consultations of the list are in each stage (with the same filters)."""
    stmt = listing(manage_scope, compound_id=compound_id, search=search).order_by(
        None).with_only_columns(
        Consultation.stage, func.count(Consultation.id)).group_by(Consultation.stage)
    return {stage: n for stage, n in db.session.execute(stmt)}
