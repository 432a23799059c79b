"""Consultations (议题): stages, items, opinions, discussion, meetings and revisions."""
