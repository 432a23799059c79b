"""Browser end-to-end tests and accessibility checks."""
