"""Implementation pages: progress, the item checklist, inspections, and evaluation."""

from flask import Blueprint

bp = Blueprint("implementation", __name__, url_prefix="/consultations")
