"""Voting pages: the resident's ballot, the committee's entry of paper ballots, the roll."""

from flask import Blueprint

bp = Blueprint("ballots", __name__, url_prefix="/consultations")
