"""Account operations: users, scopes, passwords, sign-in and household access codes.

Every function flushes (never commits), takes the acting user explicitly and records its audit
event in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from consult.accounts import lockout, sessions
from consult.accounts.models import AccessCode, User, UserScope, UserSession
from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.core import secrets as secret_keys
from consult.core import sorting
from consult.core.database import affected_rows, lock_row
from consult.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from consult.core.i18n import SUPPORTED_LOCALES
from consult.core.models import utcnow
from consult.core.policy import GRID_SCOPED_ROLES, SCOPED_ROLES, STORED_ROLES, Role
from consult.core.sorting import Sort
from consult.core.tabular import write_csv
from consult.extensions import db
from consult.registry.models import Building, Community, Compound, Grid, Household

describe({
    "accounts.user.created": _l("Account created"),
    "accounts.user.updated": _l("Account changed"),
    "accounts.user.password_set": _l("Password set"),
    "accounts.user.locale_set": _l("Language chosen"),
    "accounts.scope.added": _l("Scope added"),
    "accounts.scope.removed": _l("Scope removed"),
    "accounts.login.succeeded": _l("Signed in"),
    "accounts.login.failed": _l("Sign-in failed"),
    "accounts.access_code.issued": _l("Access code issued"),
    "accounts.access_code.revoked": _l("Access code revoked"),
    "accounts.access_code.redeemed": _l("Access code used to sign in"),
    "accounts.access_code.redeemed_again": _l(
        "Access code used again on the same device, within the grace period"),
}, kind="accounts")
describe_kinds({"accounts": _l("Accounts and sign-in")})

describe_objects({"user_account": _l("Account")})

MIN_PASSWORD_LENGTH = 8
ACCESS_CODE_DIGITS = 12
# A code's first digits are its selector, unique among open codes; the other seven verify it.
# A wrong code with a real selector counts against that code, so each code can be guessed only
# a few times before it pauses (lockout.note_wrong_verifier): with 10^7 verifiers, a handful of
# tries has a chance of a few in ten million. 10^5 selectors hold tens of thousands of open
# codes at once.
SELECTOR_DIGITS = 5
_SELECTOR_TRIES = 50
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-@]{3,64}$")
# Compared against when the username does not exist, so both paths take the same time.
_DUMMY_HASH = generate_password_hash("timing-equaliser")


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def validate_username(username: str, *, exclude_id: int | None = None) -> str:
    """A free username of 3–64 letters, digits or ._-@; raises ValidationFailed."""
    username = normalize_username(username)
    if not USERNAME_PATTERN.match(username):
        raise ValidationFailed(
            _("Use 3 to 64 letters, digits or the characters . _ - @ for the username."),
            {"username": [_("Use 3 to 64 letters, digits or the characters . _ - @.")]})
    taken = db.session.scalar(select(User.id).where(
        User.username == username, User.id != (exclude_id or 0)))
    if taken:
        raise ValidationFailed(_("This username is taken."),
                               {"username": [_("This username is taken.")]})
    return username


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        message = _("The password needs at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)
        raise ValidationFailed(message, {"password": [message]})
    if len(password) > 200:
        message = _("The password is too long.")
        raise ValidationFailed(message, {"password": [message]})
    return password


def _clean_display_name(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 100:
        message = _("Give a name of 1 to 100 characters.")
        raise ValidationFailed(message, {"display_name": [message]})
    return value


def create_user(actor: Any, *, username: str, display_name: str, role: str,
                password: str | None = None, household: Household | None = None) -> User:
    """Create an account. Residents need their household; staff need a password."""
    if role not in {r.value for r in STORED_ROLES}:
        raise ValidationFailed(_("Unknown role."), {"role": [_("Unknown role.")]})
    if (role == Role.RESIDENT) != (household is not None):
        raise ValidationFailed(_("A resident account belongs to exactly one household."))
    if household is not None and resident_account_for(household) is not None:
        raise Conflict(_("This household already has an account."))
    if role != Role.RESIDENT and not password:
        message = _("Staff accounts need a password.")
        raise ValidationFailed(message, {"password": [message]})
    user = User(
        username=validate_username(username),
        display_name=_clean_display_name(display_name),
        role=role,
        household=household,
        password_hash=generate_password_hash(validate_password(password)) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "accounts.user.created", user, {
        "username": user.username, "role": role,
        "household_id": household.id if household else None,
    }, compound_id=household.scope_compound_id if household else None)
    return user


def _active_admins_besides(user: User) -> int:
    return db.session.scalar(select(func.count(User.id)).where(
        User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)) or 0


def update_user(actor: Any, user: User, *, display_name: str, role: str, active: bool) -> User:
    """Change a staff account's name, role or active flag; the last admin stays an admin."""
    if role not in {r.value for r in STORED_ROLES}:
        raise ValidationFailed(_("Unknown role."), {"role": [_("Unknown role.")]})
    if (role == Role.RESIDENT) != (user.role == Role.RESIDENT):
        raise ValidationFailed(
            _("Resident accounts and staff accounts cannot be converted into each other."),
            {"role": [_("Not allowed for this account.")]})
    losing_admin = user.role == Role.ADMIN and (role != Role.ADMIN or not active)
    if losing_admin and _active_admins_besides(user) == 0:
        raise Conflict(_("This is the last active administrator; appoint another first."))
    old_role = user.role
    before = {"display_name": user.display_name, "role": user.role, "active": user.active}
    after = {"display_name": _clean_display_name(display_name), "role": role, "active": active}
    if before == after:
        return user
    for key, value in after.items():
        setattr(user, key, value)
    if role not in SCOPED_ROLES or (
            (Role(role) in GRID_SCOPED_ROLES) != (Role(old_role) in GRID_SCOPED_ROLES)):
        # Scopes only mean something for scoped roles, and a grid worker's are grids: a
        # change between the two kinds starts from no scope rather than a wrong one.
        user.scopes.clear()
    user.forget_scope_cache()
    db.session.flush()
    if (before["role"], before["active"]) != (role, active):
        sessions.end_all(user)  # what the account may do changed: it signs in again
    audit.record(actor, "accounts.user.updated", user, {
        "changes": {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    })
    return user


def add_scope(actor: Any, user: User, *, community: Community | None = None,
              compound: Compound | None = None, grid: Grid | None = None) -> UserScope:
    """Give a committee member or supervisor a compound or a whole community, or a grid
    worker a grid."""
    if user.role not in SCOPED_ROLES:
        raise ValidationFailed(_("Only committee members, supervisors and grid workers have "
                                 "scopes."))
    if sum(target is not None for target in (community, compound, grid)) != 1:
        raise ValidationFailed(_("Choose one community, compound or grid."))
    if (grid is not None) != (Role(user.role) in GRID_SCOPED_ROLES):
        raise ValidationFailed(_("Grid workers are scoped to grids, and only they are."))
    wanted = (community.id if community else None, compound.id if compound else None,
              grid.id if grid else None)
    for scope in user.scopes:
        if (scope.community_id, scope.compound_id, scope.grid_id) == wanted:
            raise Conflict(_("This scope is already assigned."))
    scope = UserScope(user=user, community=community, compound=compound, grid=grid)
    db.session.add(scope)
    db.session.flush()
    user.forget_scope_cache()
    sessions.end_all(user)
    audit.record(actor, "accounts.scope.added", user, {
        "community_id": wanted[0], "compound_id": wanted[1], "grid_id": wanted[2],
    }, compound_id=compound.id if compound else None)
    return scope


def remove_scope(actor: Any, scope: UserScope) -> None:
    """Take a scope away from a user."""
    user = scope.user
    data = {"community_id": scope.community_id, "compound_id": scope.compound_id,
            "grid_id": scope.grid_id}
    user.scopes.remove(scope)
    db.session.flush()
    user.forget_scope_cache()
    sessions.end_all(user)
    audit.record(actor, "accounts.scope.removed", user, data, compound_id=data["compound_id"])


def set_password(actor: Any, user: User, password: str) -> None:
    """Set a user's password (themselves or an administrator). Every session of the account
    ends (a browser that changed its own password is signed in again: ``sessions.renew``)."""
    user.password_hash = generate_password_hash(validate_password(password))
    user.failed_logins = 0  # a new password starts a new count (a lock stays until lifted)
    db.session.flush()
    sessions.end_all(user)
    audit.record(actor, "accounts.user.password_set", user, {"by_self": actor is user})


def choose_first_password(user: User, record: UserSession | None, username: str,
                          password: str, now: datetime | None = None) -> None:
    """A household that has just signed in with its access code chooses a username and a
    password, without giving a current one: once, within ``WELCOME_MINUTES`` of that sign-in.

    The letter's code is what proves the household; any other session (a password sign-in,
    staff, a code sign-in that already chose or waited too long) must confirm the current
    password on its account page instead. Every session of the account ends, as with any new
    password.
    """
    now = now or utcnow()
    if record is not None:
        lock_row(record)  # two posts of one form: the second sees the first's choice
    if user.role != Role.RESIDENT or not sessions.welcome_open(record, now):
        raise Conflict(_("A password can be chosen here only just after signing in with an "
                         "access code. Change it on your account page."))
    assert record is not None
    set_username(user, user, username)
    set_password(user, user, password)
    record.welcome_used_at = now
    db.session.flush()


def change_own_password(user: User, current: str | None, password: str) -> None:
    """Change one's own password; the current one must be given if there is one. Every
    session of the account ends."""
    if user.password_hash and not user.check_password(current or ""):
        message = _("The current password is not right.")
        raise ValidationFailed(message, {"current": [message]})
    set_password(user, user, password)


def set_username(actor: Any, user: User, username: str) -> None:
    """Let a resident choose the name they sign in with."""
    new = validate_username(username, exclude_id=user.id)
    if new == user.username:
        return
    old, user.username = user.username, new
    db.session.flush()
    audit.record(actor, "accounts.user.updated", user,
                 {"changes": {"username": {"from": old, "to": new}}})


def set_locale(actor: Any, user: User, locale: str) -> None:
    """Remember the user's language."""
    if locale not in SUPPORTED_LOCALES:
        raise ValidationFailed(_("Unknown language."))
    if user.locale == locale:
        return
    user.locale = locale
    db.session.flush()
    audit.record(actor, "accounts.user.locale_set", user, {"locale": locale})


def authenticate(username: str, password: str, now: datetime | None = None) -> User | None:
    """The user for these credentials, or None. Records the attempt either way.

    Raises ``lockout.SignInLocked`` (after recording the attempt) while the account is locked,
    even for the right password, and when this wrong password locks it.
    """
    now = now or utcnow()
    name = normalize_username(username)[:64]
    user = db.session.scalar(select(User).where(User.username == name)) if name else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        audit.record(None, "accounts.login.failed", ("user_account", None),
                     {"username": name, "reason": "unknown_user"})
        return None
    if lockout.account_locked_until(user, now) is not None:
        check_password_hash(_DUMMY_HASH, password or "")  # no hint from the timing either
        audit.record(None, "accounts.login.failed", user, {"username": name, "reason": "locked"})
        raise lockout.account_locked(user, now)
    right = user.check_password(password or "")
    if not right or not user.active:
        reason = "inactive" if user.active is False else "bad_password"
        audit.record(None, "accounts.login.failed", user, {"username": name, "reason": reason})
        # Only wrong passwords count; an account without one (made from an access code)
        # cannot be guessed, so it is never locked.
        if not right and user.password_hash and lockout.note_wrong_password(user, now):
            raise lockout.account_locked(user, now)
        db.session.flush()
        return None
    note_login(user, "password")
    return user


def note_login(user: User, method: str) -> None:
    """Record a successful sign-in."""
    user.last_login_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    db.session.flush()
    audit.record(user, "accounts.login.succeeded", user, {"method": method},
                 compound_id=user.household.scope_compound_id if user.household else None)


# --- household access codes -------------------------------------------------------------------


class NoSecretKey(DomainError):
    """The server runs without a real secret key: codes hashed with the public placeholder
    would be refused by a server that has one, and anyone could forge them."""

    status_code = 503
    code = "unavailable"


def _keyed(text: str) -> str:
    secret = current_app.config["SECRET_KEY"]
    if secret_keys.is_placeholder(secret) and not current_app.testing:
        raise NoSecretKey(_(
            "This server has no secret key, so access codes can be neither issued nor checked. "
            "Set SECRET_KEY, or let the server write instance/secret_key, and run the command "
            "again."))
    return hmac.new(secret.encode("utf-8"), text.encode("ascii"), hashlib.sha256).hexdigest()


def _code_hash(code: str) -> str:
    return _keyed(code)


def _selector_hash(code: str) -> str:
    """The keyed hash of a code's selector (its first SELECTOR_DIGITS digits)."""
    return _keyed(f"selector:{code[:SELECTOR_DIGITS]}")


def client_fingerprint(address: str | None, device: str | None) -> str | None:
    """A keyed hash of a client address and browser (its device cookie); None without one."""
    if not device:
        return None
    return _keyed(f"grace:{address or '-'}|{device}")


def normalize_code(text: str) -> str | None:
    """'1234 5678-9012' → '123456789012'; None if it cannot be a code."""
    digits = re.sub(r"[\s\-]", "", text or "")
    if len(digits) != ACCESS_CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def format_code(code: str) -> str:
    """Groups of four digits, as printed on the letter."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def issue_access_code(actor: Any, household: Household) -> str:
    """A new access code for the household; earlier unused codes stop working.

    Returns the code in plain text: it is shown (or printed) once and stored only as keyed
    hashes (of the whole code, and of its selector, which no other open code shares).
    """
    now = utcnow()
    revoked = _revoke_open_codes(household, now)
    for _attempt in range(_SELECTOR_TRIES):
        code = f"{secrets.randbelow(10 ** ACCESS_CODE_DIGITS):0{ACCESS_CODE_DIGITS}d}"
        selector = _selector_hash(code)
        if db.session.scalar(select(AccessCode.id).where(AccessCode.selector_hash == selector)):
            continue
        access = AccessCode(household=household, code_hash=_code_hash(code),
                            selector_hash=selector, created_at=now,
                            created_by_id=getattr(actor, "id", None))
        try:
            # Another transaction may take the same selector meanwhile: then draw again.
            with db.session.begin_nested():
                db.session.add(access)
        except IntegrityError:
            continue
        break
    else:
        raise Conflict(_("Too many access codes are open at once to issue another. Revoke "
                         "the unused letters of households that no longer need them."))
    audit.record(actor, "accounts.access_code.issued", household,
                 {"access_code_id": access.id, "revoked_earlier": revoked})
    return code


def revoke_access_codes(actor: Any, household: Household) -> int:
    """Revoke the household's unused codes; returns how many."""
    revoked = _revoke_open_codes(household, utcnow())
    if revoked:
        audit.record(actor, "accounts.access_code.revoked", household, {"count": revoked})
    return revoked


def _revoke_open_codes(household: Household, now: Any) -> int:
    return affected_rows(db.session.execute(
        update(AccessCode)
        .where(AccessCode.household_id == household.id, AccessCode.used_at.is_(None),
               AccessCode.revoked_at.is_(None))
        .values(revoked_at=now, selector_hash=None)
        .execution_options(synchronize_session=False)))


def open_access_code(household: Household) -> AccessCode | None:
    """The household's unused, unrevoked code, if any."""
    return db.session.scalar(select(AccessCode).where(
        AccessCode.household_id == household.id, AccessCode.used_at.is_(None),
        AccessCode.revoked_at.is_(None)).order_by(AccessCode.id.desc()))


def households_with_open_codes(household_ids: Sequence[int]) -> int:
    """How many of these households hold an unused, unrevoked access code (one that a new
    letter would make stop working)."""
    if not household_ids:
        return 0
    return db.session.scalar(select(func.count(func.distinct(AccessCode.household_id))).where(
        AccessCode.household_id.in_(list(household_ids)), AccessCode.used_at.is_(None),
        AccessCode.revoked_at.is_(None))) or 0


def resident_account_for(household: Household) -> User | None:
    return db.session.scalar(select(User).where(User.household_id == household.id))


# The columns of the list of codes a command writes for the committee's letters.
CODE_LIST_HEADER = ("楼栋", "单元", "房号", "访问码")


def issue_compound_codes(actor: Any, compound: Compound, *, only_new: bool = False,
                         progress: Callable[[int, int], None] | None = None
                         ) -> list[list[str]]:
    """Issue a fresh code to every household of ``compound`` (earlier unused codes stop
    working), in address order; ``only_new`` skips households that already have an account.

    Returns a row per code for ``code_list``: building, unit, room and the code as printed.
    The codes are stored only as hashes, so these rows are the one place they can be read.
    ``progress(advance, total)`` is told of each household done.
    """
    households = list(db.session.scalars(
        select(Household).join(Household.building).where(Building.compound_id == compound.id)
        .order_by(Building.sort_key, Household.sort_key)))
    rows = []
    for household in households:
        if not (only_new and resident_account_for(household) is not None):
            code = issue_access_code(actor, household)
            rows.append([household.building.name, household.unit, household.room,
                         format_code(code)])
        if progress is not None:
            progress(1, len(households))
    return rows


def code_list(rows: Sequence[Sequence[str]]) -> bytes:
    """The CSV file of ``issue_compound_codes``' rows, with its Chinese header."""
    return write_csv(CODE_LIST_HEADER, rows)


# A resident who mistypes is warned this many tries before code sign-in pauses.
WARN_WRONG_CODES_LEFT = 3


def _invalid_code() -> str:
    return _("This access code is not valid. It may have been mistyped, used already or "
             "replaced by a newer letter.")


class WrongAccessCode(NotFound):
    """A wrong code from a client that may still try: the reason, and perhaps a warning."""

    code = "invalid_code"

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class CodeSignIn:
    """A household signed in with its code: the account, the code, whether this was the
    grace period's second use, and whether the session may still choose a password."""

    user: User
    access: AccessCode
    again: bool
    welcome: bool


def code_sign_in(address: str | None, device: str | None, text: str,
                 now: datetime | None = None) -> CodeSignIn:
    """Sign a household in with the code from its letter, sent from ``address`` by the browser
    whose device cookie is ``device``.

    - A right, open code signs in (and is used up), unless the code is paused; a code of the
      older kind (without a selector) also not while code sign-in from the address is paused.
    - A used code signs in again from the same address and browser within
      ``ACCESS_CODE_GRACE_MINUTES`` (the first answer may have been lost); from anywhere else
      it is refused like any used code.
    - A wrong code whose selector names an open code counts against that code, and pauses it
      at the threshold. Any code aimed at a paused code gets the same answer, right or wrong.
    - A code that names nothing counts against the address, and pauses code sign-in from it
      at the threshold. Wrong codes also count towards the alarm over all addresses.

    Raises ``lockout.SignInLocked`` for a pause and ``WrongAccessCode`` for a wrong code
    (warning when few tries are left). Both may have recorded the attempt: the caller commits
    after either, like after a sign-in.
    """
    now = now or utcnow()
    client = lockout.client_key(address)
    client_paused = lockout.client_locked_until(client, now)
    code = normalize_code(text)
    access = None
    if code is not None:
        access = db.session.scalar(select(AccessCode).where(
            AccessCode.code_hash == _code_hash(code)).with_for_update())
    if access is not None and access.is_usable:
        if access.paused_at(now):
            raise lockout.code_paused(access.paused_until, now)  # type: ignore[arg-type]
        if access.selector_hash is None and client_paused is not None:
            raise lockout.client_locked(client_paused, now)  # older codes: per address only
        try:
            user = _redeem(access, client_fingerprint(address, device), now)
        except NotFound as exc:  # the right code of a switched-off account
            raise WrongAccessCode([exc.message]) from exc
        return CodeSignIn(user, access, again=False, welcome=True)
    if access is not None and _in_grace(access, address, device, now):
        try:
            user, welcome = _redeem_again(access, now)
        except NotFound as exc:
            raise WrongAccessCode([exc.message]) from exc
        return CodeSignIn(user, access, again=True, welcome=welcome)
    target = None
    if code is not None and access is None:
        target = db.session.scalar(select(AccessCode).where(
            AccessCode.selector_hash == _selector_hash(code)).with_for_update())
    if target is not None:
        if target.paused_at(now):
            raise lockout.code_paused(target.paused_until, now)  # type: ignore[arg-type]
        lockout.note_alarm(now)
        paused = lockout.note_wrong_verifier(target, now)
        if client_paused is not None:
            raise lockout.client_locked(client_paused, now)
        if paused is not None:
            raise lockout.code_paused(paused, now)
        raise WrongAccessCode([_invalid_code()])
    if client_paused is not None:
        raise lockout.client_locked(client_paused, now)
    lockout.note_alarm(now)
    locked, left = lockout.note_wrong_code(client, now)
    if locked is not None:
        raise lockout.client_locked(locked, now)
    messages = [_invalid_code()]
    if left <= WARN_WRONG_CODES_LEFT:
        messages.append(ngettext(
            "%(num)d more wrong code and signing in with a code will be paused for "
            "%(minutes)s minutes.",
            "%(num)d more wrong codes and signing in with a code will be paused for "
            "%(minutes)s minutes.", left,
            minutes=current_app.config["ACCESS_CODE_LOCKOUT_MINUTES"]))
    raise WrongAccessCode(messages)


def redeem_access_code(text: str, now: datetime | None = None) -> User:
    """Sign a household in with its access code, once (no per-client counting: for commands
    and tests; the sign-in page uses ``code_sign_in``).

    Creates the household's account on first use. Raises NotFound for a wrong, used or
    revoked code (with one message for all three, so the answer reveals nothing).
    """
    now = now or utcnow()
    code = normalize_code(text)
    access = None
    if code is not None:
        access = db.session.scalar(select(AccessCode).where(
            AccessCode.code_hash == _code_hash(code)).with_for_update())
    if access is None or not access.is_usable:
        raise NotFound(_invalid_code())
    if access.paused_at(now):
        raise lockout.code_paused(access.paused_until, now)  # type: ignore[arg-type]
    return _redeem(access, None, now)


def _redeem(access: AccessCode, client: str | None, now: datetime) -> User:
    """Use up an open code: the household's account (made on first use) signs in."""
    household = access.household
    user = resident_account_for(household)
    if user is None:
        user = User(username=_free_resident_username(household), display_name=household.label,
                    role=Role.RESIDENT, household=household)
        db.session.add(user)
        db.session.flush()
        audit.record(None, "accounts.user.created", user,
                     {"username": user.username, "role": Role.RESIDENT.value,
                      "household_id": household.id, "via": "access_code"},
                     compound_id=household.scope_compound_id)
    elif not user.active:
        raise NotFound(_("This household's account is switched off; please ask your "
                         "committee."))
    access.used_at, access.used_by_client, access.selector_hash = now, client, None
    db.session.flush()
    audit.record(user, "accounts.access_code.redeemed", household, {"access_code_id": access.id})
    note_login(user, "access_code")
    return user


def _in_grace(access: AccessCode, address: str | None, device: str | None,
              now: datetime) -> bool:
    """Whether a used code may sign in again: soon after, from the same address and browser."""
    grace = timedelta(minutes=int(current_app.config["ACCESS_CODE_GRACE_MINUTES"]))
    client = client_fingerprint(address, device)
    if (access.used_at is None or access.revoked_at is not None
            or access.used_by_client is None or client is None
            or not hmac.compare_digest(access.used_by_client, client)
            or now - access.used_at > grace):
        return False
    # A letter printed since replaces this code, used or not.
    return not db.session.scalar(select(exists().where(
        AccessCode.household_id == access.household_id, AccessCode.id > access.id)))


def _redeem_again(access: AccessCode, now: datetime) -> tuple[User, bool]:
    """The grace period's sign-in; returns the account and whether the new session may still
    choose a password (no session of this code has chosen one yet)."""
    household = access.household
    user = resident_account_for(household)
    if user is None or not user.active:
        raise NotFound(_("This household's account is switched off; please ask your "
                         "committee."))
    assert access.used_at is not None
    audit.record(user, "accounts.access_code.redeemed_again", household, {
        "access_code_id": access.id,
        "seconds_after": int((now - access.used_at).total_seconds())})
    note_login(user, "access_code_again")
    chosen = db.session.scalar(select(exists().where(
        UserSession.access_code_id == access.id, UserSession.welcome_used_at.isnot(None))))
    return user, not chosen


def _free_resident_username(household: Household) -> str:
    base = f"h{household.id:06d}"
    candidate, n = base, 1
    while db.session.scalar(select(User.id).where(User.username == candidate)):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def get_user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such account."))
    return user


def get_scope_or_404(user: User, scope_id: int) -> UserScope:
    """One of the user's scopes."""
    scope = db.session.get(UserScope, scope_id)
    if scope is None or scope.user_id != user.id:
        raise NotFound(_("No such scope."))
    return scope


# How the accounts list can be sorted; each key ends with the username as tie-breaker.
USER_SORTS: dict[str, tuple[Any, ...]] = {
    "role": (User.role, User.username),
    "username": (User.username,),
    "name": (User.display_name, User.username),
    # Never signed in comes first (oldest), so "most recent first" starts with real sign-ins.
    "login": (User.last_login_at.isnot(None), User.last_login_at, User.username),
}


def list_users(role: str | None, q: str, sort: Sort | None = None) -> Any:
    """A select of accounts, filtered by role and by a text in username or name, by role
    and username (or ``sort``)."""
    stmt = sorting.order(select(User), sort or Sort("role"), USER_SORTS)
    if role:
        stmt = stmt.where(User.role == role)
    q = (q or "").strip()[:50]
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(func.lower(User.username).like(like) | User.display_name.like(f"%{q}%"))
    return stmt


def household_ids_with_codes(households: Sequence[Household]) -> set[int]:
    """Which of these households hold an unused code."""
    ids = [h.id for h in households]
    if not ids:
        return set()
    return set(db.session.scalars(select(AccessCode.household_id).where(
        AccessCode.household_id.in_(ids), AccessCode.used_at.is_(None),
        AccessCode.revoked_at.is_(None))))


# --- this browser -------------------------------------------------------------------------------
# What the pages call: the change above, and this browser's session (``sessions``, which keeps
# the request's cookie) started or kept, in the same transaction.


def sign_in(username: str, password: str, remember: bool) -> User | None:
    """Sign this browser in with a password (``authenticate``): the account, or None. The
    attempt is recorded either way; raises ``lockout.SignInLocked`` while the account is
    locked."""
    user = authenticate(username, password)
    if user is not None:
        sessions.start(user, remember, "password")
    return user


def sign_in_with_code(address: str | None, device: str | None, text: str) -> CodeSignIn:
    """Sign this browser in, remembered, with a household's access code (``code_sign_in``,
    whose refusals it raises)."""
    signed_in = code_sign_in(address, device, text)
    sessions.start(signed_in.user, remember=True, method="access_code",
                   welcome=signed_in.welcome, access_code_id=signed_in.access.id)
    return signed_in


def set_password_here(actor: Any, user: User, password: str) -> None:
    """``set_password`` from this browser (an administrator's): every session of the account
    ends, except this browser's when the account is the administrator's own."""
    set_password(actor, user, password)
    if user.id == getattr(actor, "id", None):
        sessions.renew(user)


def change_own_password_here(user: User, current: str | None, password: str) -> None:
    """``change_own_password`` on this browser, which stays signed in; every other session
    of the account ends."""
    change_own_password(user, current, password)
    sessions.renew(user)


def choose_first_password_here(user: User, record: UserSession | None, username: str,
                               password: str) -> None:
    """``choose_first_password`` just after an access-code sign-in; this phone stays signed
    in, every other session of the account ends."""
    choose_first_password(user, record, username, password)
    sessions.renew(user)

