"""Forms for signing in and for managing accounts."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, Length, Optional, Regexp

from consult.accounts.service import MIN_PASSWORD_LENGTH, USERNAME_PATTERN
from consult.core.forms import FlaskForm, max_length, options, required
from consult.core.policy import ROLE_LABELS, Role


def username_rules() -> list[object]:
    return [required(), Regexp(USERNAME_PATTERN.pattern, message=_l(
        "Use 3 to 64 letters, digits or the characters . _ - @."))]


def new_password_rules() -> list[object]:
    return [required(), max_length(200), Length(min=MIN_PASSWORD_LENGTH, message=_l(
        "The password needs at least %(n)s characters.", n=MIN_PASSWORD_LENGTH))]


def new_password_field(label: object = None) -> PasswordField:
    return PasswordField(label or _l("New password (at least 8 characters)"),
                         validators=new_password_rules(),
                         render_kw={"autocomplete": "new-password"})


def confirm_password_field() -> PasswordField:
    return PasswordField(_l("Repeat the password"), validators=[
        required(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[required(), max_length(64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("Password"), validators=[required(), max_length(200)],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()


class AccessCodeForm(FlaskForm):
    code = StringField(
        _l("Access code (12 digits, from your letter)"),
        validators=[required(), max_length(40)],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"},
    )


class ActivateForm(FlaskForm):
    username = StringField(_l("Username"), validators=username_rules(),
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = new_password_field()
    confirm = confirm_password_field()


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[Optional(), max_length(200)],
                            render_kw={"autocomplete": "current-password"})
    password = new_password_field()
    confirm = confirm_password_field()


STAFF_ROLES = (Role.COMMITTEE, Role.SUPERVISOR, Role.GRID_WORKER, Role.ADMIN)


def staff_role_choices() -> list[SelectChoice]:
    return options((r.value, ROLE_LABELS[r]) for r in STAFF_ROLES)


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=username_rules())
    display_name = StringField(_l("Name"), validators=[required(), max_length(100)])
    role = SelectField(_l("Role"), choices=[])
    password = new_password_field(_l("Initial password (at least 8 characters)"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = staff_role_choices()


class UserEditForm(FlaskForm):
    display_name = StringField(_l("Name"), validators=[required(), max_length(100)])
    role = SelectField(_l("Role"), choices=[])
    active = BooleanField(_l("Account is active"))

    def __init__(self, *args: object, resident: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = (options([(Role.RESIDENT.value, ROLE_LABELS[Role.RESIDENT])])
                             if resident else staff_role_choices())


class ScopeForm(FlaskForm):
    target = SelectField(_l("Community, compound or grid"), choices=[],
                         validators=[required()])


class ResetPasswordForm(FlaskForm):
    password = new_password_field()
