"""Serving uploaded files to those allowed to see them."""

from flask import Blueprint

bp = Blueprint("uploads", __name__)
