"""The consultations blueprint; its routes are split by stage of the method into modules."""

from flask import Blueprint

bp = Blueprint("consultations", __name__, url_prefix="/consultations")

from consult.consultations.views import pages, proposal  # noqa: E402,F401 - register routes
