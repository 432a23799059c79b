"""User accounts, roles and scopes, password and access-code sign-in."""
