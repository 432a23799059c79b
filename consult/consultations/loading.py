"""Loading a consultation for a page: drafts stay hidden, passed deadlines take effect."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user

from consult.consultations import service, workflow
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.core.errors import NotFound, PermissionDenied
from consult.core.policy import authorize, can
from consult.extensions import db
from consult.registry.models import Household


def load(consultation_id: int) -> Consultation:
    """The consultation, if the user may see it, with any passed deadline applied.

    A deadline that passed while nobody was looking (closing the opinions or the vote) is
    applied here as the system, in a transaction of its own, before the page goes on.
    """
    consultation = service.get_or_404(consultation_id)
    if consultation.stage == Stage.DRAFT and not can(current_user, "consultation.manage",
                                                     consultation):
        raise NotFound(_("No such consultation."))
    if workflow.due_action(consultation) is not None:
        # catch_up locks the consultation (lock_row): on SQLite a page view's read transaction
        # takes the write lock there, and the consultation is read again as last committed.
        workflow.catch_up(consultation)
        # Also when another request took the step first: release the lock catch_up took
        # rather than hold it (and SQLite's write lock) while the page is built.
        db.session.commit()
    return consultation


def load_managed(consultation_id: int) -> Consultation:
    """The consultation, for a committee page: the user must manage its compound."""
    consultation = load(consultation_id)
    authorize(current_user, "consultation.manage", consultation)
    return consultation


def acting_household(consultation: Consultation) -> Household:
    """The signed-in resident's household, which must be concerned by the consultation."""
    household = getattr(current_user, "household", None)
    if household is None:
        raise PermissionDenied(_("Only a household's own account can take part."))
    authorize(current_user, "consultation.participate", household)
    if not service.household_in_scope(consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    return household
