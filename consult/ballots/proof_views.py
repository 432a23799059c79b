"""The public proof page: whoever holds a receipt code sees whether its ballot was counted,
with what answers, and the audit path to the root printed on the resolution notice."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_limiter.util import get_remote_address

from consult.ballots import proofs
from consult.ballots.explain import CHOICE_LABELS
from consult.ballots.forms import ReceiptForm
from consult.ballots.service import counted_rounds
from consult.core.policy import require
from consult.extensions import db, limiter
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import loading

bp = Blueprint("proofs", __name__)


def _receipt_limit() -> str:
    return current_app.config["RECEIPT_RATE_LIMIT"]


@bp.route("/consultations/<int:consultation_id>/proof", methods=["GET", "POST"])
@require("ballot.prove")
@limiter.limit(_receipt_limit, methods=["POST"])
def check(consultation_id: int) -> tuple[str, int]:
    consultation = loading.load(consultation_id)
    heads = proofs.tree_heads(consultation)
    form = ReceiptForm()
    proof, status = None, 200
    if heads and form.validate_on_submit():
        try:
            proof = proofs.check_receipt(get_remote_address(), consultation, form.receipt.data)
        except (proofs.ReceiptNotFound, proofs.ReceiptChecksPaused) as exc:
            form.receipt.errors = [exc.message]
            if isinstance(exc, proofs.ReceiptChecksPaused):
                status = exc.status_code
        # A wrong code is counted (and may have started a pause): kept whatever the answer.
        db.session.commit()
    titles = {item.number: item.title for item in consultation.items}
    answers = None
    if proof is not None:
        # Item titles as they stand now are those of the current round only.
        answers = [(int(number), titles.get(int(number)) if proof.round == consultation.round
                    else None, CHOICE_LABELS.get(answer, answer))
                   for number, answer in sorted(proof.answers.items(), key=lambda a: int(a[0]))]
    return render_template(
        "proofs/check.html", c=consultation, form=form, heads=heads, proof=proof,
        answers=answers, notice=notices.current_notice(consultation, NoticeKind.RESOLUTION),
        several_rounds=len(heads) > 1,
        counted_before=not heads and bool(counted_rounds(consultation))), status
