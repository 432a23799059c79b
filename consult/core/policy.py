"""Who may do what, where: one table of role × action → grant, checked in one place.

A grant says how far a role's permission reaches:
- ``ALL``: everywhere;
- ``SCOPED``: only for objects in the compounds the user is scoped to;
- ``OWN``: only for the user's own household.

Objects tell the policy where they belong through ``scope_compound_id`` and
``scope_household_id`` properties, so this module imports no domain model.

A view names its action once, with ``@require``; ``load`` fetches the object the view works on
and checks that action on it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, Protocol, TypeVar, overload

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from consult.core.errors import NotFound, PermissionDenied, Unauthenticated
from consult.extensions import db, login_manager


class Role(StrEnum):
    ANONYMOUS = "anonymous"  # not a stored role: whoever is not signed in
    RESIDENT = "resident"
    COMMITTEE = "committee"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    GRID_WORKER = "grid_worker"  # 网格员: street-office staff who look after whole grids


STORED_ROLES = (Role.RESIDENT, Role.COMMITTEE, Role.SUPERVISOR, Role.ADMIN, Role.GRID_WORKER)
SCOPED_ROLES = frozenset({Role.COMMITTEE, Role.SUPERVISOR, Role.GRID_WORKER})
# Roles whose scopes are grids (the others are scoped to compounds or communities).
GRID_SCOPED_ROLES = frozenset({Role.GRID_WORKER})

ROLE_LABELS = {
    Role.ANONYMOUS: _l("Visitor"),
    Role.RESIDENT: _l("Resident"),
    Role.COMMITTEE: _l("Committee member"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.ADMIN: _l("Administrator"),
    Role.GRID_WORKER: _l("Grid worker"),
}


class Grant(StrEnum):
    ALL = "all"
    SCOPED = "scoped"
    OWN = "own"


_A, _R, _C, _S, _D = Role.ANONYMOUS, Role.RESIDENT, Role.COMMITTEE, Role.SUPERVISOR, Role.ADMIN
_G = Role.GRID_WORKER
_EVERYONE = {_A: Grant.ALL, _R: Grant.ALL, _C: Grant.ALL, _S: Grant.ALL, _D: Grant.ALL,
             _G: Grant.ALL}
_SIGNED_IN = {_R: Grant.ALL, _C: Grant.ALL, _S: Grant.ALL, _D: Grant.ALL, _G: Grant.ALL}
# Staff who read everything in their scope (grid workers in their grids' compounds).
_READERS = {_C: Grant.SCOPED, _S: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL}

POLICY: dict[str, dict[Role, Grant]] = {
    "public.view": _EVERYONE,
    "account.sign_in": _EVERYONE,
    "account.self": _SIGNED_IN,
    "registry.view": _READERS,
    "registry.export": _READERS,
    "registry.edit": {_C: Grant.SCOPED, _D: Grant.ALL},
    "registry.import": {_C: Grant.SCOPED, _D: Grant.ALL},
    "registry.access_codes": {_C: Grant.SCOPED, _D: Grant.ALL},
    "registry.structure": {_D: Grant.ALL},
    "accounts.manage": {_D: Grant.ALL},
    "audit.view": _READERS,
    # Consultations: published stages are public; drafts only for those who manage them.
    "consultation.view": _EVERYONE,
    "consultation.manage": {_C: Grant.SCOPED, _D: Grant.ALL},
    # Drafts are read by those who run consultations and by the grid workers of the compound.
    "consultation.view_drafts": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    # Opinions collected offline (visits, questionnaires, meetings) are typed in by staff.
    "opinion.record": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    "consultation.participate": {_R: Grant.OWN},
    "ballot.enter": {_C: Grant.SCOPED, _D: Grant.ALL},
    # Answers taken at the door (入户): the door-to-door channel only; ``ballot.enter`` holds
    # the others (paper, proxy, corrections).
    "ballot.visit": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    "ballot.decide": {_C: Grant.SCOPED, _D: Grant.ALL},
    "ballot.inspect": _READERS,
    # Whoever holds a receipt code may see what its ballot counted (and nothing else).
    "ballot.prove": _EVERYONE,
    "implementation.log": {_C: Grant.SCOPED, _D: Grant.ALL},
    "implementation.inspect": {_S: Grant.SCOPED, _D: Grant.ALL},
    "attachment.view_staff": _READERS,
    # Door-to-door follow-up (再入户): the visit lists, their teams and outcomes. Grid workers
    # go on the visits and record them; the committee makes the lists.
    "visits.view": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    "visits.manage": {_C: Grant.SCOPED, _D: Grant.ALL},
    "visits.record": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    # The overview of every compound in the user's scope (counts only, no personal data).
    "dashboard.view": _READERS,
    # 观摩评比: a round is seen by the staff of its compounds; each compound's committee scores
    # the others; the street office (administrators) runs rounds and enters inspectors' scores.
    "scoring.view": _READERS,
    "scoring.score": {_C: Grant.SCOPED},
    "scoring.manage": {_D: Grant.ALL},
    # Defect reports after completion (查漏补缺). A household reports for itself, a grid worker
    # for a household of their grid's compounds, a supervisor on their own; a report's page
    # is seen by its household and the staff of its compound.
    "feedback.report": {_R: Grant.OWN, _S: Grant.SCOPED, _G: Grant.SCOPED},
    "feedback.view": {_R: Grant.OWN, _C: Grant.SCOPED, _S: Grant.SCOPED, _G: Grant.SCOPED,
                      _D: Grant.ALL},
    "feedback.list": _READERS,
    # The committee accepts, rejects, assigns and marks fixed, and sets the warranty period.
    "feedback.manage": {_C: Grant.SCOPED, _D: Grant.ALL},
    # The reporting household or a supervisor confirms a fix or reopens the report.
    "feedback.check": {_R: Grant.OWN, _S: Grant.SCOPED},
    # Reminders for the compound's WeChat group and notice board (counts only, no names):
    # those who run the consultation, and the supervisors who watch it in their compounds.
    "consultation.remind": {_C: Grant.SCOPED, _S: Grant.SCOPED, _D: Grant.ALL},
    # Everyone signed in has a notification centre; each sees and marks only their own.
    "notifications.own": _SIGNED_IN,
    # 问卷: the committee builds a consultation's questionnaire and takes free answers up as
    # opinions; those who record offline opinions print the sheets and type in paper answers;
    # staff in scope read the results (each household's answers among them).
    "questionnaire.manage": {_C: Grant.SCOPED, _D: Grant.ALL},
    "questionnaire.enter": {_C: Grant.SCOPED, _G: Grant.SCOPED, _D: Grant.ALL},
    "questionnaire.results": _READERS,
}

ACTION_LABELS: dict[str, Any] = {
    "public.view": _l("view public pages"),
    "account.sign_in": _l("sign in"),
    "account.self": _l("manage your own account"),
    "registry.view": _l("view the household registry"),
    "registry.export": _l("download the household registry"),
    "registry.edit": _l("edit the household registry"),
    "registry.import": _l("import households"),
    "registry.access_codes": _l("issue or revoke household access codes"),
    "registry.structure": _l("create communities and compounds"),
    "accounts.manage": _l("manage user accounts"),
    "audit.view": _l("read the audit trail"),
    "consultation.view": _l("read consultations"),
    "consultation.manage": _l("run consultations"),
    "consultation.view_drafts": _l("read consultations not yet published"),
    "opinion.record": _l("record opinions collected offline"),
    "consultation.participate": _l("take part for a household"),
    "ballot.enter": _l("enter paper, proxy and door-to-door ballots"),
    "ballot.visit": _l("record answers taken door to door"),
    "ballot.decide": _l("decide between differing entries of a paper ballot"),
    "ballot.inspect": _l("see individual ballots and the electoral roll"),
    "ballot.prove": _l("check a ballot with its receipt code"),
    "implementation.log": _l("record the progress of the works"),
    "implementation.inspect": _l("add inspection notes"),
    "attachment.view_staff": _l("open internal documents"),
    "visits.view": _l("see follow-up visit lists and their progress"),
    "visits.manage": _l("make follow-up visit lists and split them among teams"),
    "visits.record": _l("record the outcome of follow-up visits"),
    "dashboard.view": _l("compare the compounds on the overview dashboard"),
    "scoring.view": _l("see scoring rounds"),
    "scoring.score": _l("score other compounds in a scoring round"),
    "scoring.manage": _l("run scoring rounds"),
    "feedback.report": _l("report a defect in the finished works"),
    "feedback.view": _l("see a defect report"),
    "feedback.list": _l("see the defect reports of a compound"),
    "feedback.manage": _l("handle defect reports"),
    "feedback.check": _l("confirm or reopen a fixed defect"),
    "consultation.remind": _l("make reminders for the WeChat group and the notice board"),
    "notifications.own": _l("read your notifications and set how you are notified"),
    "questionnaire.manage": _l("build questionnaires"),
    "questionnaire.enter": _l("print questionnaire sheets and enter paper answers"),
    "questionnaire.results": _l("see questionnaire results and each household's answers"),
}


# Pages of these actions show personal data (names, phones, access codes, accounts) or what a
# household chose: no browser or proxy may keep them (Cache-Control: no-store), so that the
# back button of a shared phone or office computer shows nothing once its user has gone.
PRIVATE_ACTIONS = frozenset({
    "account.sign_in", "account.self", "accounts.manage", "registry.view", "registry.export",
    "registry.edit", "registry.import", "registry.access_codes", "registry.structure",
    "audit.view", "consultation.participate", "ballot.enter", "ballot.visit", "ballot.decide",
    "ballot.inspect", "ballot.prove", "visits.view", "visits.manage", "visits.record",
    "notifications.own", "feedback.view", "feedback.list",
    "questionnaire.enter", "questionnaire.results",
})


def never_stored(user: Any, action: str | None, mimetype: str | None) -> bool:
    """Whether a response must carry ``Cache-Control: no-store``: every response of a
    private action, and every page a household account sees (its home and consultation pages
    show whether it voted, and its receipt)."""
    if action in PRIVATE_ACTIONS:
        return True
    return mimetype == "text/html" and role_of(user) is Role.RESIDENT


class _Scoped(Protocol):
    scope_compound_id: int | None


def role_of(user: Any) -> Role:
    """The policy role of a user object (anonymous when not signed in)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Role.ANONYMOUS
    return Role(user.role)


def grant_for(user: Any, action: str) -> Grant | None:
    """The grant the user's role has for an action, or None."""
    return POLICY[action].get(role_of(user))


def compound_scope(user: Any, action: str) -> frozenset[int] | None:
    """Compounds in which ``user`` may perform ``action``: None means everywhere."""
    grant = grant_for(user, action)
    if grant is Grant.ALL:
        return None
    if grant is Grant.SCOPED:
        return user.scoped_compound_ids()
    return frozenset()


def can(user: Any, action: str, target: Any = None) -> bool:
    """Whether ``user`` may perform ``action``; on ``target`` when one is given."""
    grant = grant_for(user, action)
    if grant is None:
        return False
    if target is None or grant is Grant.ALL:
        return True
    if grant is Grant.SCOPED:
        compound_id = getattr(target, "scope_compound_id", None)
        return compound_id is not None and compound_id in user.scoped_compound_ids()
    # Grant.OWN
    household_id = getattr(target, "scope_household_id", None)
    return household_id is not None and household_id == getattr(user, "household_id", None)


def denial_message(user: Any, action: str, target: Any = None) -> str:
    """Why ``user`` may not perform ``action``, in the user's language."""
    label = ACTION_LABELS[action]
    if grant_for(user, action) is None:
        return _(
            "Your role (%(role)s) does not allow you to %(action)s.",
            role=ROLE_LABELS[role_of(user)],
            action=label,
        )
    return _("This record is outside the compounds assigned to you, so you may not %(action)s.",
             action=label)


def authorize(user: Any, action: str, target: Any = None) -> None:
    """Raise PermissionDenied unless ``user`` may perform ``action`` (on ``target``)."""
    if not can(user, action, target):
        raise PermissionDenied(denial_message(user, action, target))


F = TypeVar("F", bound=Callable[..., Any])

# Requests under this path are the JSON API's: bearer tokens, never the browser's cookie.
API_PREFIX = "/api/"


def is_api_request() -> bool:
    """Whether the request under way is one of the JSON API's."""
    return has_request_context() and request.path.startswith(API_PREFIX)


def sign_in_first() -> Unauthenticated:
    """What an API request without a valid token is answered (401)."""
    return Unauthenticated(_("Please sign in first: send an access token in the "
                             "Authorization header."))


def require(action: str) -> Callable[[F], F]:
    """View decorator: the role must hold ``action``; anonymous users are sent to sign in.

    The action is kept on the view (``policy_action``) so the access-matrix test can check that
    every route declares one. The view checks it on the object it works on with ``load``.
    """
    if action not in POLICY:
        raise KeyError(f"unknown policy action {action!r}")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user._get_current_object()
            if grant_for(user, action) is None:
                if role_of(user) is Role.ANONYMOUS:
                    if is_api_request():  # no sign-in page to send a program to
                        raise sign_in_first()
                    return login_manager.unauthorized()
                raise PermissionDenied(denial_message(user, action))
            return view(*args, **kwargs)

        wrapped.policy_action = action  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def declared_action() -> str | None:
    """The action the view answering this request declared with ``@require`` (None: no view,
    e.g. a 404 for an unknown address)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "policy_action", None)


T = TypeVar("T")


def authorized(target: T) -> T:
    """``target``, if the signed-in user may perform the view's action (the one it declared
    with ``@require``) on it; else PermissionDenied, which sends an anonymous visitor to sign
    in, as ``@require`` does. A second action on an object is checked with ``authorize``."""
    action = declared_action()
    if action is None:
        raise LookupError(f"{request.endpoint!r} declares no policy action to check")
    authorize(current_user, action, target)
    return target


@overload
def load(source: type[T], object_id: int) -> T: ...


@overload
def load(source: Callable[[int], T], object_id: int) -> T: ...


def load(source: Any, object_id: int) -> Any:
    """The object a view works on, if the signed-in user may perform the view's action on it
    (``authorized``): a view names its action once, in ``@require``.

    ``source`` is a model, looked up by its primary key, or a domain's ``get_…_or_404``
    function, which says in its own words what is missing. Raises NotFound or
    PermissionDenied.
    """
    if isinstance(source, type):
        found = db.session.get(source, object_id)
        if found is None:
            raise NotFound(_("No such record."))
    else:
        found = source(object_id)
    return authorized(found)
