"""Sign-in (password or household access code), own account, and account administration."""

from __future__ import annotations

import re
import secrets

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from consult.accounts import lockout, sessions
from consult.accounts import service as accounts
from consult.accounts.forms import (
    AccessCodeForm,
    ActivateForm,
    LoginForm,
    PasswordForm,
    ResetPasswordForm,
    ScopeForm,
    UserCreateForm,
    UserEditForm,
)
from consult.accounts.models import User
from consult.core import sorting
from consult.core.forms import options, page_number, page_size, save_form, text_arg
from consult.core.policy import (
    GRID_SCOPED_ROLES,
    ROLE_LABELS,
    STORED_ROLES,
    Role,
    authorize,
    authorized,
    can,
    load,
    require,
)
from consult.core.urls import safe_next
from consult.extensions import db, limiter
from consult.notifications import service as notifications
from consult.registry import service as registry
from consult.registry.models import Community, Compound, Grid, Household

bp = Blueprint("accounts", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _code_limit() -> str:
    return current_app.config["ACCESS_CODE_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@require("account.sign_in")
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Response | str:
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            user = accounts.sign_in(form.username.data, form.password.data,
                                    bool(form.remember.data))
        except lockout.SignInLocked as exc:
            db.session.commit()  # the attempt, and the lock it may have started, are recorded
            form.form_errors.append(exc.message)
            return render_template("accounts/login.html", form=form)
        db.session.commit()  # the attempt is recorded either way
        if user is not None:
            return redirect(safe_next(form.next.data) or url_for("main.index"))
        form.form_errors.append(_("Wrong username or password, or the account is switched off."))
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@require("account.self")
def logout() -> Response:
    sessions.end_current()  # for every copy of this cookie
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("main.index"))


# The code form gives each browser a random device cookie: a used code signs in again within
# the grace period only from the same address *and* browser.
DEVICE_COOKIE = "device"
_DEVICE_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,64}$")


def _device() -> str | None:
    token = request.cookies.get(DEVICE_COOKIE, "")
    return token if _DEVICE_TOKEN.match(token) else None


def _with_device(response: Response, device: str | None) -> Response:
    if device is None:
        response.set_cookie(
            DEVICE_COOKIE, secrets.token_urlsafe(24),
            max_age=int(current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()),
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")), httponly=True,
            samesite="Lax")
    return response


@bp.route("/code", methods=["GET", "POST"])
@require("account.sign_in")
@limiter.limit(_code_limit, methods=["POST"])
def code_login() -> Response | str:
    form = AccessCodeForm()
    device = _device()
    if request.method == "GET" and request.args.get("code"):
        form.code.data = request.args.get("code", "")[:40]  # the letter's QR code fills it in
    if form.validate_on_submit():
        try:
            accounts.sign_in_with_code(get_remote_address(), device, form.code.data)
        except lockout.SignInLocked as exc:
            db.session.commit()  # the wrong code that started the pause is kept
            form.code.errors = [exc.message]
        except accounts.WrongAccessCode as exc:
            db.session.commit()  # the wrong code counts towards a pause
            form.code.errors = exc.messages
        else:
            db.session.commit()
            return _with_device(redirect(url_for("accounts.activate")), device)
    return _with_device(make_response(render_template("accounts/code_login.html", form=form)),
                        device)


@bp.route("/welcome", methods=["GET", "POST"])
@require("account.self")
def activate() -> Response | str:
    """Just after an access-code sign-in: choose a username and password (optional, once)."""
    record = sessions.current_record()
    if (record is None or current_user.role != Role.RESIDENT
            or not sessions.welcome_open(record)):
        flash(_("Passwords are changed here, with the current password if the account has "
                "one."), "info")
        return redirect(url_for("accounts.profile"))
    form = ActivateForm()
    if request.method == "GET":
        form.username.data = current_user.username
    if save_form(form, lambda: accounts.choose_first_password_here(
            current_user, record, form.username.data, form.password.data)):
        flash(_("Your password is set. Sign in with the username %(name)s next time.",
                name=current_user.username), "success")
        return redirect(url_for("main.index"))
    return render_template("accounts/activate.html", form=form, until=record.welcome_until)


@bp.route("/account", methods=["GET", "POST"])
@require("account.self")
def profile() -> Response | str:
    form = PasswordForm()
    if not current_user.password_hash:
        del form.current  # an account made from an access code has no password to confirm
    current = form.current.data if "current" in form else None
    if save_form(form, lambda: accounts.change_own_password_here(
            current_user, current, form.password.data),
                 _("Your password has been changed. Every other device signed in to this "
                   "account has been signed out.")):
        return redirect(url_for("accounts.profile"))
    return render_template("accounts/profile.html", form=form,
                           notification_email=notifications.preferences_of(current_user).email)


@bp.post("/account/sign-out-everywhere")
@require("account.self")
def sign_out_everywhere() -> Response:
    sessions.sign_out_everywhere(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out on every device, this one included."), "info")
    return redirect(url_for("main.index"))


# --- administration ---------------------------------------------------------------------------


@bp.get("/admin/users")
@require("accounts.manage")
def users() -> str:
    role = request.args.get("role", "")
    role = role if role in {r.value for r in STORED_ROLES} else ""
    q = text_arg("q", 100)
    sort = sorting.parse(request.args.get("sort"), list(accounts.USER_SORTS), "role")
    page = db.paginate(accounts.list_users(role or None, q, sort), page=page_number(),
                       per_page=page_size(), error_out=False)
    roles = [(r.value, ROLE_LABELS[r]) for r in STORED_ROLES]
    return render_template("accounts/users.html", page=page, role=role, q=q, roles=roles,
                           sort=sort)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@require("accounts.manage")
def user_new() -> Response | str:
    form = UserCreateForm()
    saved = save_form(form, lambda: accounts.create_user(
        current_user, username=form.username.data, display_name=form.display_name.data,
        role=form.role.data, password=form.password.data))
    if saved:
        flash(_("Account %(name)s created.", name=saved.value.username), "success")
        return redirect(url_for("accounts.user_edit", user_id=saved.value.id))
    return render_template("accounts/user_new.html", form=form)


def _scope_choices(user: User) -> list[SelectChoice]:
    """What ``user`` may be scoped to: grids for a grid worker, else communities and
    compounds."""
    choices: list[SelectChoice] = []
    grids = Role(user.role) in GRID_SCOPED_ROLES
    for community in registry.communities():
        if grids:
            pairs = [(f"grid:{g.id}", g.name) for g in community.grids]
        else:
            pairs = [(f"community:{community.id}", _("%(name)s (whole community)",
                                                     name=community.name))]
            pairs += [(f"compound:{c.id}", c.name) for c in community.compounds]
        if pairs:
            choices += options(pairs, optgroup=community.name)
    return choices


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@require("accounts.manage")
def user_edit(user_id: int) -> Response | str:
    user = accounts.get_user_or_404(user_id)
    form = UserEditForm(obj=user, resident=user.role == Role.RESIDENT)
    if save_form(form, lambda: accounts.update_user(
            current_user, user, display_name=form.display_name.data, role=form.role.data,
            active=bool(form.active.data)), _("Saved.")):
        return redirect(url_for("accounts.user_edit", user_id=user.id))
    scope_form = ScopeForm()
    scope_form.target.choices = _scope_choices(user)
    return render_template("accounts/user_edit.html", user=user, form=form,
                           scope_form=scope_form, password_form=ResetPasswordForm())


@bp.post("/admin/users/<int:user_id>/password")
@require("accounts.manage")
def user_password(user_id: int) -> Response | str:
    user = accounts.get_user_or_404(user_id)
    form = ResetPasswordForm()
    if not save_form(form, lambda: accounts.set_password_here(
            current_user, user, form.password.data),
                     _("The password of %(name)s has been reset. Its earlier sign-ins have "
                       "ended.", name=user.username)):
        flash(" ".join(map(str, form.password.errors)) or _("Give a new password."), "danger")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


@bp.app_context_processor
def _lock_helpers() -> dict[str, object]:
    return {"locked_until": lockout.account_locked_until,
            "code_paused_until": lockout.code_paused_until}


@bp.post("/accounts/<int:user_id>/unlock")
@require("registry.access_codes")
def unlock(user_id: int) -> Response:
    """Lift a sign-in lock: a household's account from its household page (committee, in
    scope), any account from the accounts page (administrators)."""
    user = accounts.get_user_or_404(user_id)
    if user.household is not None:
        back = url_for("registry.household", household_id=authorized(user.household).id)
    else:
        authorize(current_user, "accounts.manage")  # a staff account: administrators only
        back = url_for("accounts.user_edit", user_id=user.id)
    if lockout.unlock_account(current_user, user):
        db.session.commit()
        flash(_("%(name)s can sign in again.", name=user.username), "success")
    else:
        flash(_("This account is not locked."), "info")
    if request.args.get("back") == "account" and can(current_user, "accounts.manage"):
        back = url_for("accounts.user_edit", user_id=user.id)
    return redirect(back)


@bp.post("/accounts/households/<int:household_id>/access-code/resume")
@require("registry.access_codes")
def code_resume(household_id: int) -> Response:
    """Lift the pause of a household's access code (committee, in scope; administrators)."""
    household = load(Household, household_id)
    access = accounts.open_access_code(household)
    if access is not None and lockout.resume_code(current_user, access):
        db.session.commit()
        flash(_("The access code of %(label)s works again.", label=household.label), "success")
    else:
        flash(_("This household's access code is not paused."), "info")
    return redirect(url_for("registry.household", household_id=household.id))


@bp.post("/admin/users/<int:user_id>/scopes")
@require("accounts.manage")
def scope_add(user_id: int) -> Response:
    user = accounts.get_user_or_404(user_id)
    form = ScopeForm()
    form.target.choices = _scope_choices(user)
    if not form.validate_on_submit():
        flash(_("Choose a community, a compound or a grid."), "danger")
        return redirect(url_for("accounts.user_edit", user_id=user.id))
    kind, _sep, raw_id = form.target.data.partition(":")
    model = {"community": Community, "compound": Compound, "grid": Grid}[kind]
    target = registry.get_or_404(model, int(raw_id))
    accounts.add_scope(current_user, user, **{kind: target})
    db.session.commit()
    flash(_("Scope added."), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/scopes/<int:scope_id>/delete")
@require("accounts.manage")
def scope_remove(user_id: int, scope_id: int) -> Response:
    user = accounts.get_user_or_404(user_id)
    accounts.remove_scope(current_user, accounts.get_scope_or_404(user, scope_id))
    db.session.commit()
    flash(_("Scope removed."), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))
