"""Notifications: the in-app notification centre, per-person preferences and the outbox that
sends reminders by email and SMS (docs/notifications.md)."""
