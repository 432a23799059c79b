"""How the audit trail reads the events of accounts: people by the name they are shown by,
and the accounts' fields."""

from __future__ import annotations

from collections.abc import Collection

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.accounts.models import User
from consult.audit.presenting import Field, describe_fields, name_objects
from consult.core.policy import ROLE_LABELS
from consult.extensions import db


def user_names(ids: Collection[str]) -> dict[str, str]:
    """Account id → the name the account is shown by (a household's in the reader's
    language)."""
    wanted = [int(one) for one in ids if one.isdigit()]
    return {str(user.id): user.shown_name
            for user in db.session.scalars(select(User).where(User.id.in_(wanted)))}


name_objects("user_account", user_names)
describe_fields({
    "username": Field(_l("Username")),
    "role": Field(_l("Role"), values={role.value: label for role, label in ROLE_LABELS.items()}),
    "method": Field(_l("Method")),
    "locale": Field(_l("Language")),
    "by_self": Field(_l("By the account's own user")),
    "was_locked_until": Field(_l("Was locked until")),
    "revoked_earlier": Field(_l("Earlier codes revoked")),
    "access_code_id": Field(_l("Access code"), hidden=True),
    "display_name": Field(_l("Name")),
    "active": Field(_l("Active")),
})
