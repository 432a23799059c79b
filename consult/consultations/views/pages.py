"""Consultation list, overview, settings and stage steps."""

from consult.consultations.views import bp  # noqa: F401
