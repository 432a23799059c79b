"""Loading a consultation for a page: drafts stay hidden, passed deadlines take effect, and the
view's action is checked on it (``core.policy.load`` for every other object)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user

from consult.consultations import service
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.core.errors import NotFound, PermissionDenied
from consult.core.policy import Role, authorized, can, role_of
from consult.extensions import db
from consult.process import workflow
from consult.registry.models import Household


def _caught_up(consultation_id: int) -> Consultation:
    """The consultation, if the user may see it, with any passed deadline applied.

    A deadline that passed while nobody was looking (closing the opinions or the vote) is
    applied here as the system, in a transaction of its own, before the page goes on.
    """
    consultation = service.get_or_404(consultation_id)
    if consultation.stage == Stage.DRAFT and not can(current_user, "consultation.view_drafts",
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


def load(consultation_id: int) -> Consultation:
    """The consultation, if the user may see it and perform the view's action on it (the one
    it declared with ``@require``), with any passed deadline applied. Raises NotFound or
    PermissionDenied."""
    return authorized(_caught_up(consultation_id))


def load_participating(consultation_id: int) -> tuple[Consultation, Household]:
    """The consultation and the signed-in resident's household, for a page where a household
    takes part: the view's action is checked on the household, which must be one the
    consultation concerns."""
    consultation = _caught_up(consultation_id)
    household = getattr(current_user, "household", None)
    if household is None:
        raise PermissionDenied(_("Only a household's own account can take part."))
    authorized(household)
    if not service.household_in_scope(consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    return consultation, household


def load_household_or_staff(consultation_id: int) -> tuple[Consultation, Household | None]:
    """The consultation, with the signed-in resident's household (checked as in
    ``load_participating``), or with None for staff (checked as in ``load``)."""
    if role_of(current_user) is Role.RESIDENT:
        return load_participating(consultation_id)
    return load(consultation_id), None
