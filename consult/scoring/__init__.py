"""观摩评比: scoring rounds in which compounds score each other, and the published ranking."""
