"""The audit chain's verification in words, in the reader's language (``flask audit
verify``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from consult.audit import service as audit
from consult.audit.service import VerifyResult


@dataclass(frozen=True)
class VerifyReport:
    """``flask audit verify`` in words: ``lines`` say what holds; ``problem``, if any, what
    does not (the command exits 1 with it)."""

    lines: list[str]
    problem: str | None = None
    events: int = 0  # the events verified (before the break, if the chain is broken)


def verify_report(jobs: int = 1) -> VerifyReport:
    """Verify the chain (in up to ``jobs`` processes), then let every registered check (the
    domains' rows against the chain, e.g. the stored ballots) say what it found."""
    result = audit.verify(jobs=jobs)
    if result.problem is not None:
        return VerifyReport([], chain_broken(result), result.checked)
    lines = [chain_holds(result)]
    failed: list[str] = []
    for outcome in result.checks.values():
        (failed if outcome.problems else lines).extend(outcome.lines())
    return VerifyReport(lines, "\n".join(failed) if failed else None, result.checked)


def speed_line(events: int, seconds: float) -> str:
    """How fast the verification went, in events per second."""
    rate = events / seconds if seconds > 0 else 0.0
    return _("Verified %(n)s events in %(seconds)s s (%(rate)s events/s).", n=events,
             seconds=f"{seconds:.2f}", rate=f"{rate:,.0f}")


def chain_holds(result: VerifyResult) -> str:
    """How many events were verified, up to which head."""
    return _("The audit chain holds: %(n)s events in %(chains)s chains, %(anchors)s anchors "
             "match; global head #%(seq)s %(hash)s.", n=result.checked, chains=result.chains,
             anchors=result.anchors, seq=result.head_seq, hash=result.head_hash[:16])


def chain_broken(result: VerifyResult) -> str:
    """Where the chain breaks and what that means, for a ``result`` with a ``problem``."""
    problem = result.problem
    assert problem is not None
    reasons = {
        "hash": _("its content does not match its hash (the row was changed)"),
        "link": _("it does not point to the previous event (an event was removed, inserted "
                  "or reordered)"),
        "gap": _("the sequence jumps from %(expected)s to %(found)s (events are missing)",
                 expected=problem.expected, found=problem.found),
        "head": (_("the chain has events but no chain head (its head row was removed)")
                 if problem.found == "none" else
                 _("the chain head says %(found)s but the last event is %(expected)s (events "
                   "at the end were removed or added)", found=problem.found,
                   expected=problem.expected)),
        "anchor": _("the global chain anchored this position with hash %(expected)s but the "
                    "chain holds %(found)s there (the chain was rewritten or cut short)",
                    expected=problem.expected[:16], found=problem.found[:16]),
    }
    where = (_("event #%(seq)s of chain %(chain)s", seq=problem.seq, chain=problem.chain)
             if problem.seq is not None
             else _("the chain head of chain %(chain)s", chain=problem.chain))
    return _("The audit chain is broken at %(where)s: %(reason)s. %(n)s events before it "
             "verified.", where=where, reason=reasons[problem.kind], n=result.checked)
