"""Account operations: users, scopes, passwords, sign-in and household access codes.

Every function flushes (never commits), takes the acting user explicitly and records its audit
event in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from consult.accounts import lockout
from consult.accounts.models import AccessCode, User, UserScope
from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.core import secrets as secret_keys
from consult.core import sorting
from consult.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from consult.core.i18n import SUPPORTED_LOCALES
from consult.core.models import utcnow
from consult.core.policy import SCOPED_ROLES, STORED_ROLES, Role
from consult.core.sorting import Sort
from consult.extensions import db
from consult.registry.models import Community, Compound, Household

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
})

describe_objects({"user_account": _l("Account")})

MIN_PASSWORD_LENGTH = 8
ACCESS_CODE_DIGITS = 12  # 10^12 codes: guessing one under the rate limit takes millennia
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
    before = {"display_name": user.display_name, "role": user.role, "active": user.active}
    after = {"display_name": _clean_display_name(display_name), "role": role, "active": active}
    if before == after:
        return user
    for key, value in after.items():
        setattr(user, key, value)
    if role not in SCOPED_ROLES:
        user.scopes.clear()  # scopes only mean something for committee members and supervisors
    user.forget_scope_cache()
    db.session.flush()
    audit.record(actor, "accounts.user.updated", user, {
        "changes": {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    })
    return user


def add_scope(actor: Any, user: User, *, community: Community | None = None,
              compound: Compound | None = None) -> UserScope:
    """Give a committee member or supervisor a compound, or a whole community."""
    if user.role not in SCOPED_ROLES:
        raise ValidationFailed(_("Only committee members and supervisors have scopes."))
    if (community is None) == (compound is None):
        raise ValidationFailed(_("Choose either a community or a compound."))
    for scope in user.scopes:
        if (scope.community_id, scope.compound_id) == (
                community.id if community else None, compound.id if compound else None):
            raise Conflict(_("This scope is already assigned."))
    scope = UserScope(user=user, community=community, compound=compound)
    db.session.add(scope)
    db.session.flush()
    user.forget_scope_cache()
    audit.record(actor, "accounts.scope.added", user, {
        "community_id": community.id if community else None,
        "compound_id": compound.id if compound else None,
    }, compound_id=compound.id if compound else None)
    return scope


def remove_scope(actor: Any, scope: UserScope) -> None:
    """Take a scope away from a user."""
    user = scope.user
    data = {"community_id": scope.community_id, "compound_id": scope.compound_id}
    user.scopes.remove(scope)
    db.session.flush()
    user.forget_scope_cache()
    audit.record(actor, "accounts.scope.removed", user, data, compound_id=data["compound_id"])


def set_password(actor: Any, user: User, password: str) -> None:
    """Set a user's password (themselves or an administrator)."""
    user.password_hash = generate_password_hash(validate_password(password))
    user.failed_logins = 0  # a new password starts a new count (a lock stays until lifted)
    db.session.flush()
    audit.record(actor, "accounts.user.password_set", user, {"by_self": actor is user})


def set_username_and_password(user: User, username: str, password: str) -> None:
    """A resident who signed in with a code chooses how to sign in next time."""
    set_username(user, user, username)
    set_password(user, user, password)


def change_own_password(user: User, current: str | None, password: str) -> None:
    """Change one's own password; the current one must be given if there is one."""
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


def _code_hash(code: str) -> str:
    secret = current_app.config["SECRET_KEY"]
    if secret_keys.is_placeholder(secret) and not current_app.testing:
        raise NoSecretKey(_(
            "This server has no secret key, so access codes can be neither issued nor checked. "
            "Set SECRET_KEY, or let the server write instance/secret_key, and run the command "
            "again."))
    return hmac.new(secret.encode("utf-8"), code.encode("ascii"), hashlib.sha256).hexdigest()


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

    Returns the code in plain text: it is shown (or printed) once and stored only as a keyed
    hash.
    """
    now = utcnow()
    revoked = _revoke_open_codes(household, now)
    code = f"{secrets.randbelow(10 ** ACCESS_CODE_DIGITS):0{ACCESS_CODE_DIGITS}d}"
    access = AccessCode(household=household, code_hash=_code_hash(code), created_at=now,
                        created_by_id=getattr(actor, "id", None))
    db.session.add(access)
    db.session.flush()
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
    result = db.session.execute(
        update(AccessCode)
        .where(AccessCode.household_id == household.id, AccessCode.used_at.is_(None),
               AccessCode.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def open_access_code(household: Household) -> AccessCode | None:
    """The household's unused, unrevoked code, if any."""
    return db.session.scalar(select(AccessCode).where(
        AccessCode.household_id == household.id, AccessCode.used_at.is_(None),
        AccessCode.revoked_at.is_(None)).order_by(AccessCode.id.desc()))


def resident_account_for(household: Household) -> User | None:
    return db.session.scalar(select(User).where(User.household_id == household.id))


# A resident who mistypes is warned this many tries before code sign-in pauses.
WARN_WRONG_CODES_LEFT = 3


class WrongAccessCode(NotFound):
    """A wrong code from a client that may still try: the reason, and perhaps a warning."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(messages))
        self.messages = messages


def redeem_access_code_from(address: str | None, text: str, now: datetime | None = None) -> User:
    """Code sign-in from a client address: ``redeem_access_code`` behind the per-client pause.

    Raises ``lockout.SignInLocked`` while the address is paused or when this wrong code starts
    a pause, and ``WrongAccessCode`` otherwise (warning when few tries are left). Both record
    the wrong code: the caller commits after either, like after a sign-in.
    """
    now = now or utcnow()
    client = lockout.client_key(address)
    lockout.check_client(client, now)
    try:
        user = redeem_access_code(text)
    except NotFound as exc:
        locked, left = lockout.note_wrong_code(client, now)
        if locked is not None:
            raise lockout.client_locked(locked, now) from exc
        messages = [exc.message]
        if left <= WARN_WRONG_CODES_LEFT:
            messages.append(ngettext(
                "%(num)d more wrong code and signing in with a code will be paused for "
                "%(minutes)s minutes.",
                "%(num)d more wrong codes and signing in with a code will be paused for "
                "%(minutes)s minutes.", left,
                minutes=current_app.config["ACCESS_CODE_LOCKOUT_MINUTES"]))
        raise WrongAccessCode(messages) from exc
    lockout.forget_wrong_codes(client)
    return user


def redeem_access_code(text: str) -> User:
    """Sign a household in with its access code, once.

    Creates the household's account on first use. Raises NotFound for a wrong, used or
    revoked code (with one message for all three, so the answer reveals nothing).
    """
    code = normalize_code(text)
    access = None
    if code is not None:
        access = db.session.scalar(select(AccessCode).where(
            AccessCode.code_hash == _code_hash(code)).with_for_update())
    if access is None or not access.is_usable:
        raise NotFound(_("This access code is not valid. It may have been mistyped, used "
                         "already or replaced by a newer letter."))
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
    access.used_at = utcnow()
    db.session.flush()
    audit.record(user, "accounts.access_code.redeemed", household, {"access_code_id": access.id})
    note_login(user, "access_code")
    return user


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
