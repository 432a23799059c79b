"""The consultations blueprint; its routes are split by stage of the method into modules."""

from flask import Blueprint

bp = Blueprint("consultations", __name__, url_prefix="/consultations")

from consult.consultations.views import (  # noqa: E402,F401 - register routes
    discussion,
    meetings,
    opinions,
    pages,
    proposal,
    questionnaires,
)
