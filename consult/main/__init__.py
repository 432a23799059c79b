"""Public pages: home, health check, language choice."""
