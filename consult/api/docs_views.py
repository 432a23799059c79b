"""The API's OpenAPI document and its documentation page (Swagger UI, served from this site:
no CDN, and it runs under the app's Content-Security-Policy)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from werkzeug.wrappers import Response

from consult.core.policy import require

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
@require("public.view")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document, built from the schemas that validate the requests."""
    from consult.api import api

    return jsonify(api.spec.to_dict())


# Served from static/vendor (its LICENSE beside it): intranets have no CDN.
SWAGGER_UI = "vendor/swagger-ui-dist-5.35.0"


@bp.get("/docs")
@require("public.view")
def docs() -> str:
    """Every operation, its parameters, answers and examples, readable and tried in place."""
    return render_template("api/docs.html", swagger=SWAGGER_UI)
