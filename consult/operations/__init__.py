"""Running an instance: consistent backups and checked restores, each one audited."""
