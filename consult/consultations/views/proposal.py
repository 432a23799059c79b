"""The proposal: items, revisions and their differences."""

from consult.consultations.views import bp  # noqa: F401
