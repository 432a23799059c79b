"""The household registry: communities, compounds, buildings, households and residents."""
