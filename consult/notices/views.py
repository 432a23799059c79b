"""Notice pages: the resolution and result notices, objections, and verification."""

from flask import Blueprint

bp = Blueprint("notices", __name__)
