"""Implementation (实施): progress, the item checklist, inspections, and residents' evaluation."""
