#!/usr/bin/env python3
"""Verify a consult audit export and recount its votes, independently of the application.

    python3 tools/recount.py EXPORT.json [--consultation ID] [--receipt CODE] [--json]

Python's standard library only, and no code of the application: anyone can read this file and
check what it does. Given an export (``flask audit export``, or the download of a counted
consultation; the format is described in docs/audit-export.md) it

1. recomputes the SHA-256 hash of every event from its fields and checks the links between
   consecutive events of each chain; checks that the chain the export holds whole (the
   consultation's own chain, or every chain of a whole export) runs from its first event to
   its head; and checks every anchor (the global chain's record of a consultation chain's
   head) against the event it names, so that a chain rewritten afterwards is caught;
2. checks each published notice's content against the SHA-256 its ``notice.published`` event
   recorded, and the chain position the notice states;
3. recounts every counted vote from the events alone: the rule from the consultation's
   settings events, the roll totals from ``ballot.roll_frozen``, each ballot's latest
   ``ballot.cast``/``ballot.changed`` event; households, owners (an owner of several households
   counts once, by their most recent ballot) and area per answer, and every condition of the
   rule with exact fractions;
4. compares every number with the result recorded when the vote closed
   (``ballot.result_frozen``) and with the tally in the resolution notice;
5. rebuilds the tree of the counted ballots (RFC 6962, SHA-256: one leaf per ballot, in the
   order of the leaves' hashes) and compares its root with the root recorded when the vote
   closed and printed on the resolution notice;
6. with ``--receipt CODE``: finds that receipt's ballot among the leaves, prints what it
   counted and its audit path, and checks that the path leads to the recorded root.

Exit status: 0 when everything holds, 1 when anything does not (each problem is named), 2 when
the file cannot be read as an export.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import unicodedata
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Any

FORMAT, VERSIONS = "consult-audit-export", (1, 2, 3)
# The hashed fields, in order: since version 3 each event has a chain (``chain_id``, left out
# of the hash for the global chain 0) and its position in it; before, one chain numbered by seq.
HASH_FIELDS = ["chain_id", "chain_seq", "created_at", "actor_id", "actor_label", "action",
               "object_type", "object_id", "compound_id", "payload", "prev_hash"]
SINGLE_CHAIN_FIELDS = ["seq", "created_at", "actor_id", "actor_label", "action", "object_type",
                       "object_id", "compound_id", "payload", "prev_hash"]
ANCHOR = "audit.anchor"
GENESIS = "0" * 64
BALLOT_ACTIONS = ("ballot.cast", "ballot.changed")

# Answers, in the order a tally lists them; "none" is a household on the roll with no answer.
ANSWERS = ("agree", "disagree", "abstain", "undecided", "not_reached")
VOTE_ANSWERS = ("agree", "disagree", "abstain")
SURVEY_ANSWERS = ("agree", "disagree", "undecided", "not_reached")
NONE = "none"
# Taking part means returning an answer, abstaining included; "not reached" is not taking part.
PARTICIPATING = ("agree", "disagree", "abstain", "undecided")
COUNTED = {"participating": PARTICIPATING, "agreeing": ("agree",), "objecting": ("disagree",)}
SYMBOL = {"gt": ">", "ge": "≥", "le": "≤", "lt": "<"}


class Report:
    """Problems found and lines to print."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.lines: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.lines.append(f"  PROBLEM: {text}")

    def say(self, text: str) -> None:
        self.lines.append(text)


# --- 1. the hashes ----------------------------------------------------------------------------


def event_hash(event: dict[str, Any]) -> str:
    """SHA-256 of the JSON array of the hashed fields (UTF-8, no spaces), as the app does."""
    if "chain_seq" in event:
        names = HASH_FIELDS if event["chain_id"] != 0 else HASH_FIELDS[1:]
    else:  # an export of version 1 or 2
        names = SINGLE_CHAIN_FIELDS
    encoded = json.dumps([event[name] for name in names], ensure_ascii=False,
                         separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def position(event: dict[str, Any]) -> tuple[int, int]:
    """(chain, position in it) of an event; a version 1 or 2 export has one chain, by seq."""
    if "chain_seq" in event:
        return event["chain_id"], event["chain_seq"]
    return 0, event["seq"]


def name(event: dict[str, Any]) -> str:
    """How the report names an event: its number, and its chain and position."""
    chain, at = position(event)
    number = f"#{event['seq']} " if "seq" in event and "chain_seq" in event else ""
    return f"event {number}(chain {chain} #{at})" if number else f"event #{at} of chain {chain}"


def verify_events(export: dict[str, Any], report: Report
                  ) -> tuple[dict[int, dict[str, Any]], dict[tuple[int, int], dict[str, Any]]]:
    """Check every event's hash and the links between consecutive events of each chain; each
    chain the export holds whole from its first event to its head; and every anchor. Return
    the events shown, by seq, and every event, by (chain, position)."""
    events = export["events"]
    head = export["chain_head"]
    single = export.get("version", 0) < 3
    if export.get("hash_fields") != (SINGLE_CHAIN_FIELDS if single else HASH_FIELDS):
        report.problem(f"the export hashes other fields than this tool knows: "
                       f"{export.get('hash_fields')}")
    by_seq: dict[int, dict[str, Any]] = {}
    at: dict[tuple[int, int], dict[str, Any]] = {}
    chains: dict[int, list[dict[str, Any]]] = defaultdict(list)
    recomputed = links = 0
    withheld: list[int] = []
    redacted: list[int] = []
    omitted = 0
    for event in events:
        chain, place = position(event)
        previous = chains[chain][-1] if chains[chain] else None
        if previous is not None and place <= position(previous)[1]:
            report.problem(f"{name(event)} comes after {name(previous)}: out of order or "
                           f"repeated")
        if event.get("omitted"):
            omitted += 1
        elif event.get("withheld"):
            withheld.append(event["seq"])
        elif event.get("redacted"):
            redacted.append(event["seq"])
        else:
            recomputed += 1
            if event_hash(event) != event["hash"]:
                report.problem(f"{name(event)} ({event['action']}): its content does not match "
                               f"its hash; the event was changed after it was recorded")
        if place == 1 and event["prev_hash"] != GENESIS:
            report.problem(f"{name(event)} does not start its chain")
        if previous is not None and position(previous)[1] == place - 1:
            links += 1
            if event["prev_hash"] != previous["hash"]:
                report.problem(f"{name(event)} does not point to {name(previous)}: the chain is "
                               f"broken there")
        if not event.get("omitted"):
            by_seq[event["seq"]] = event
        at[chain, place] = event
        chains[chain].append(event)
    # The chains the export holds whole, and the head each must end at.
    heads = {h["chain"]: h for h in export.get("chain_heads", [])}
    if export["scope"] == "chain":
        heads.setdefault(head.get("chain", 0), head)
    elif not single:
        heads = {head["chain"]: head}
    for chain, chain_head in sorted(heads.items()):
        held = chains.get(chain, [])
        places = [position(e)[1] for e in held]
        if places != list(range(1, len(places) + 1)):
            missing = sorted(set(range(1, max(places, default=0) + 1)) - set(places))
            report.problem(f"chain {chain} must be held whole from its first event; missing "
                           f"positions: {_short(missing)}")
        last = (places[-1], held[-1]["hash"]) if held else (0, GENESIS)
        if (chain_head["seq"], chain_head["hash"]) != last:
            report.problem(f"the head of chain {chain} #{chain_head['seq']} "
                           f"{chain_head['hash'][:16]} is not its last event #{last[0]} "
                           f"{last[1][:16]}")
    if single and export["scope"] != "chain" and events:
        last = events[-1]
        if last["seq"] > head["seq"] or (last["seq"] == head["seq"]
                                         and last["hash"] != head["hash"]):
            report.problem(f"the last event #{last['seq']} does not fit the chain head "
                           f"#{head['seq']}")
    anchors = verify_anchors(export, at, report)
    report.say(f"Events: {len(events)} in {len(chains)} chain(s); chain head "
               f"{head.get('chain', 0)} #{head['seq']} {head['hash'][:16]}…")
    report.say(f"  hashes recomputed: {recomputed}; links between consecutive events checked: "
               f"{links}; events listed by their hash only (not needed for the recount): "
               f"{omitted}; anchors checked: {anchors}")
    if withheld:
        report.problem(f"{len(withheld)} event(s) had their actor withheld and cannot be "
                       f"hash-checked: {_short(withheld)}")
    if redacted:
        report.problem(f"{len(redacted)} ballot event(s) written before receipts were "
                       f"recorded as hashes were exported with the receipt and owner token "
                       f"replaced, and cannot be hash-checked: {_short(redacted)}")
    return by_seq, at


def verify_anchors(export: dict[str, Any], at: dict[tuple[int, int], dict[str, Any]],
                   report: Report) -> int:
    """Check each anchor (an event of the global chain recording another chain's head) against
    the event it names: a chain rewritten after it was anchored no longer matches. The anchors
    of a consultation export come beside its events; those of a whole export are among them.
    Returns how many were checked."""
    if export["scope"] == "chain":
        anchors = [e for e in export["events"] if e.get("action") == ANCHOR
                   and position(e)[0] == 0]
    else:
        anchors = export.get("anchors", [])
        for anchor in anchors:
            if event_hash(anchor) != anchor["hash"] or position(anchor)[0] != 0:
                report.problem(f"anchor {name(anchor)}: its content does not match its hash")
    chain = export["chain_head"].get("chain")
    for anchor in anchors:
        named = json.loads(anchor["payload"])
        if export["scope"] != "chain" and named["chain"] != chain:
            report.problem(f"anchor {name(anchor)} anchors chain {named['chain']}, not this "
                           f"export's chain {chain}")
            continue
        if named["seq"] == 0 and named["hash"] == GENESIS:
            continue
        event = at.get((named["chain"], named["seq"]))
        if event is None or event["hash"] != named["hash"]:
            report.problem(f"anchor {name(anchor)} recorded chain {named['chain']} at #"
                           f"{named['seq']} with hash {named['hash'][:16]}, but "
                           + ("the export holds no such event" if event is None else
                              f"that event's hash is {event['hash'][:16]}")
                           + ": the chain was rewritten after it was anchored")
    return len(anchors)


def _short(values: list[int], shown: int = 10) -> str:
    text = ", ".join(f"#{v}" for v in values[:shown])
    return text + (f" and {len(values) - shown} more" if len(values) > shown else "")


# --- 2. the notices ---------------------------------------------------------------------------


def verify_notices(export: dict[str, Any], by_seq: dict[int, dict[str, Any]],
                   at: dict[tuple[int, int], dict[str, Any]],
                   report: Report) -> list[dict[str, Any]]:
    """Check each notice's content against the SHA-256 and chain position its publication
    event recorded; return the notices whose content can be trusted, with it parsed."""
    published = {e["object_id"]: json.loads(e["payload"]) for e in by_seq.values()
                 if e["action"] == "notice.published" and e["object_type"] == "notice"}
    trusted = []
    anchored = 0
    for notice in export.get("notices", []):
        label = f"notice {notice['verify_code']} ({notice['kind']}, round {notice['round']})"
        digest = hashlib.sha256(notice["content"].encode("utf-8")).hexdigest()
        event = published.get(str(notice["id"]))
        if digest != notice["content_sha256"]:
            report.problem(f"{label}: its content does not match its SHA-256")
            continue
        if event is None:
            report.problem(f"{label}: no notice.published event in the export records it")
            continue
        chain = notice.get("chain_id", 0)
        for key, value in (("sha256", digest), ("verify_code", notice["verify_code"]),
                           ("chain_id", chain), ("chain_seq", notice["chain_seq"]),
                           ("chain_hash", notice["chain_hash"])):
            if event.get(key, 0 if key == "chain_id" else None) != value:
                report.problem(f"{label}: its {key} differs from its publication event")
        issued = at.get((chain, notice["chain_seq"]))
        if issued is not None:
            anchored += 1
            if issued["hash"] != notice["chain_hash"]:
                report.problem(f"{label}: it was issued at the head of chain {chain} "
                               f"#{notice['chain_seq']} {notice['chain_hash'][:16]}, but that "
                               f"event's hash differs")
        trusted.append({**notice, "parsed": json.loads(notice["content"])})
    report.say(f"Notices: {len(export.get('notices', []))}; content and SHA-256 checked; "
               f"issued at a chain head found in the export: {anchored}")
    return trusted


# --- 3. the recount ---------------------------------------------------------------------------


def area_text(value: int) -> str:
    """0.01 m² as m² with two decimals, as the tally writes it."""
    return f"{value // 100}.{value % 100:02d}"


def holds(comparison: str, fraction: Fraction, numerator: int, denominator: int) -> bool:
    """numerator/denominator compared with the fraction, exactly; 0/0 counts as 0."""
    if denominator == 0:
        numerator, denominator = 0, 1
    share = Fraction(numerator, denominator)
    return {"gt": share > fraction, "ge": share >= fraction, "le": share <= fraction,
            "lt": share < fraction}[comparison]


def largest_remainder(counts: dict[str, int], total: int) -> dict[str, str]:
    """Shares of ``total`` in tenths of a percent that add up to exactly 100.0: each floored,
    the tenths left over going to the largest remainders (ties to the earlier answer)."""
    if total <= 0:
        return {key: "0.0" for key in counts}
    quotas = {key: Fraction(count * 1000, total) for key, count in counts.items()}
    tenths = {key: int(quota) for key, quota in quotas.items()}
    keys = list(counts)
    for key in sorted(keys, key=lambda k: (-(quotas[k] - tenths[k]), keys.index(k)))[
            :1000 - sum(tenths.values())]:
        tenths[key] += 1
    return {key: f"{value // 10}.{value % 10}" for key, value in tenths.items()}


def latest_ballots(events: list[dict[str, Any]], consultation_id: int, round_: int,
                   before: int) -> tuple[list[dict[str, Any]], bool]:
    """Each ballot's most recent event before seq ``before``, newest first (by the time the
    ballot was cast, then its id); False if the events do not say when they were cast and the
    order of the events stands in for it."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["seq"] >= before or event["action"] not in BALLOT_ACTIONS:
            continue
        payload = json.loads(event["payload"])
        if payload.get("consultation_id") == consultation_id and payload.get("round") == round_:
            latest[event["object_id"]] = {**payload, "ballot_id": int(event["object_id"]),
                                          "seq": event["seq"]}
    ballots = list(latest.values())
    timed = all("cast_at" in b for b in ballots)
    ballots.sort(key=(lambda b: (b["cast_at"], b["ballot_id"])) if timed
                 else (lambda b: b["seq"]), reverse=True)
    return ballots, timed


def recount(rule: dict[str, Any], roll: dict[str, int], ballots: list[dict[str, Any]],
            items: list[tuple[int, str]]) -> dict[str, Any]:
    """Count every item from the roll totals and the ballots (newest first) by the rule."""
    survey = not rule["conditions"]
    standard = SURVEY_ANSWERS if survey else VOTE_ANSWERS
    # Returned a ballot: took part on at least one item ("not reached" everywhere is none).
    returned = [b for b in ballots
                if any(b["choices"].get(str(number)) in PARTICIPATING for number, _ in items)]
    returned_owners = {b["owner"] for b in returned}
    result: dict[str, Any] = {
        "rule": {"code": rule["code"], "conditions": rule["conditions"]},
        "roll": {"households": roll["households"], "owners": roll["owners"],
                 "area_m2": area_text(roll["area_dm2"])},
        "participation": {"households": len(returned), "owners": len(returned_owners),
                          "area_m2": area_text(sum(b["area_dm2"] for b in returned))},
        "items": [],
    }
    for number, title in items:
        households: Counter[str] = Counter()
        area: Counter[str] = Counter()
        owner_answer: dict[str, str] = {}
        owner_seen: dict[str, set[str]] = defaultdict(set)
        for ballot in ballots:  # newest first
            answer = ballot["choices"].get(str(number))
            if answer is None:
                continue
            households[answer] += 1
            area[answer] += ballot["area_dm2"]
            if answer in PARTICIPATING:
                owner_seen[ballot["owner"]].add(answer)
                owner_answer.setdefault(ballot["owner"], answer)  # their most recent ballot
        for ballot in ballots:  # owners who only answered "not reached"
            answer = ballot["choices"].get(str(number))
            if answer is not None:
                owner_answer.setdefault(ballot["owner"], answer)
        keys = [a for a in ANSWERS if a in standard or a in households] + [NONE]
        owners = Counter(owner_answer.values())
        households[NONE] = roll["households"] - sum(households.values())
        area[NONE] = roll["area_dm2"] - sum(area.values())
        owners[NONE] = roll["owners"] - len(owner_answer)
        tables = {"households": households, "owners": owners, "area": area}
        taking_part = {m: sum(t[a] for a in PARTICIPATING) for m, t in tables.items()}
        totals = {"households": roll["households"], "owners": roll["owners"],
                  "area": roll["area_dm2"]}
        conditions = []
        for condition in rule["conditions"]:
            measure = condition["measure"]
            numerator = sum(tables[measure][a] for a in COUNTED[condition["count"]])
            denominator = (totals[measure] if condition["base"] == "roll"
                           else taking_part[measure])
            fraction = Fraction(condition["fraction"])

            def shown(value: int, measure: str = measure) -> Any:
                return area_text(value) if measure == "area" else value

            conditions.append({
                "numerator": shown(numerator), "denominator": shown(denominator),
                "threshold": f"{fraction.numerator}/{fraction.denominator}",
                "comparison": condition["comparison"],
                "met": holds(condition["comparison"], fraction, numerator, denominator),
                "_exact": [numerator, denominator]})
        counts = {k: households[k] for k in keys}
        result["items"].append({
            "number": number, "title": title, "counts": counts,
            "owners": {k: owners[k] for k in keys},
            "area_m2": {k: area_text(area[k]) for k in keys},
            "percentages": largest_remainder(counts, roll["households"]),
            "participation": {"households": taking_part["households"],
                              "owners": taking_part["owners"],
                              "area_m2": area_text(taking_part["area"])},
            "conditions": conditions,
            "passed": None if survey else all(c["met"] for c in conditions),
            "owner_conflicts": sum(1 for seen in owner_seen.values() if len(seen) > 1),
        })
    result["passed"] = None if survey else all(i["passed"] for i in result["items"])
    return result


def rule_at(events: list[dict[str, Any]], consultation_id: int, before: int
            ) -> dict[str, Any] | None:
    """The decision rule as the consultation's settings events left it before seq ``before``:
    set when it was created, changed by ``consultation.updated`` (``rule_json``)."""
    rule = None
    for event in events:
        if (event["seq"] >= before or event["object_type"] != "consultation"
                or event["object_id"] != str(consultation_id)):
            continue
        payload = json.loads(event["payload"])
        if event["action"] == "consultation.created":
            rule = payload["rule"]
        elif event["action"] == "consultation.updated" and "rule_json" in payload.get(
                "changes", {}):
            rule = json.loads(payload["changes"]["rule_json"]["to"])
    return rule


def _differences(mine: Any, theirs: Any, path: str) -> list[str]:
    """Where two results differ, compared number by number (words are not compared)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        out = []
        for key in sorted(set(mine) | set(theirs), key=str):
            if key in ("text", "label", "title") or str(key).startswith("_"):
                continue  # words differ by language; "_" marks the recount's own notes
            if key not in theirs or key not in mine:
                out.append(f"{path}{key}: recount {mine.get(key)!r}, recorded "
                           f"{theirs.get(key)!r}")
            else:
                out.extend(_differences(mine[key], theirs[key], f"{path}{key}."))
        return out
    if isinstance(mine, list) and isinstance(theirs, list):
        if len(mine) != len(theirs):
            return [f"{path[:-1]}: recount has {len(mine)}, recorded {len(theirs)}"]
        out = []
        for n, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            out.extend(_differences(a, b, f"{path}{n + 1}."))
        return out
    return [] if mine == theirs else [f"{path[:-1]}: recount {mine!r}, recorded {theirs!r}"]


def _numbers_of(tally: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a frozen tally (``flask ballots tally --json`` shape) that a recount gives."""
    return {
        "consultation_id": tally["consultation_id"], "round": tally["round"],
        "rule": {"code": tally["rule"]["code"], "conditions": [
            {k: c[k] for k in ("measure", "count", "base", "comparison", "fraction")}
            for c in tally["rule"]["conditions"]]},
        "roll": tally["roll"], "participation": tally["participation"],
        "passed": tally["passed"],
        "items": [{k: item[k] for k in ("number", "counts", "owners", "area_m2", "percentages",
                                        "participation", "conditions", "passed",
                                        "owner_conflicts")} for item in tally["items"]],
    }


def _for_comparison(result: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in result.items() if k != "tree"},
            "items": [{k: v for k, v in item.items() if k != "title"}
                      for item in result["items"]]}


def _households_agree(ballots: list[dict[str, Any]], listed: list[dict[str, Any]]) -> bool:
    """Open ballots: the households the notice lists (by address, with area and answers)
    are the ballots counted, as a whole (areas with answers, without ids to match)."""
    def key(area: int, choices: dict[str, str]) -> tuple[Any, ...]:
        return (area, tuple(sorted(choices.items())))

    return Counter(key(b["area_dm2"], b["choices"]) for b in ballots) == Counter(
        key(h["area_dm2"], h["choices"]) for h in listed if h["choices"])


def recount_consultations(export: dict[str, Any], by_seq: dict[int, dict[str, Any]],
                          notices: list[dict[str, Any]], only: int | None,
                          report: Report, trees: list[dict[str, Any]] | None = None
                          ) -> list[dict[str, Any]]:
    """Recount every counted round; ``trees`` (if given) receives each round's rebuilt ballot
    tree, for checking receipts."""
    events = [by_seq[s] for s in sorted(by_seq)]
    results = []
    frozen = [e for e in events if e["action"] == "ballot.result_frozen"
              and e["object_type"] == "consultation"
              and (only is None or e["object_id"] == str(only))]
    if not frozen:
        report.problem("no counted vote (ballot.result_frozen) in the export"
                       + (f" for consultation {only}" if only is not None else ""))
    for event in frozen:
        consultation_id = int(event["object_id"])
        recorded = json.loads(event["payload"])
        round_ = recorded["round"]
        report.say("")
        report.say(f"Consultation {consultation_id}, round {round_} (counted at event "
                   f"#{event['seq']})")
        rule = rule_at(events, consultation_id, event["seq"])
        rolls = [json.loads(e["payload"]) for e in events
                 if e["action"] == "ballot.roll_frozen" and e["seq"] < event["seq"]
                 and e["object_id"] == str(consultation_id)]
        rolls = [r for r in rolls if r["round"] == round_]
        if rule is None or not rolls:
            report.problem(f"consultation {consultation_id}: the export lacks its "
                           + ("rule (consultation.created)" if rule is None else
                              "roll (ballot.roll_frozen)"))
            continue
        resolutions = [n for n in notices if n["kind"] == "resolution"
                       and n["consultation_id"] == consultation_id and n["round"] == round_]
        titles = {i["number"]: i["title"] for n in resolutions for i in n["parsed"]["items"]}
        items = [(int(n), titles.get(int(n), "")) for n in sorted(recorded["items"], key=int)]
        ballots, timed = latest_ballots(events, consultation_id, round_, event["seq"])
        result = recount(rule, rolls[-1], ballots, items)
        result.update(consultation_id=consultation_id, round=round_)
        results.append(result)
        _print_result(result, len(ballots), timed, report)
        # The result recorded in the chain when the vote closed.
        mine = {str(i["number"]): {"counts": i["counts"], "passed": i["passed"]}
                for i in result["items"]}
        differences = _differences({"passed": result["passed"], "items": mine},
                                   {"passed": recorded["passed"], "items": recorded["items"]},
                                   "")
        for difference in differences:
            report.problem(f"consultation {consultation_id}: {difference} (event "
                           f"#{event['seq']})")
        report.say(f"  Same as the result recorded at event #{event['seq']}: "
                   f"{'yes' if not differences else 'NO'}")
        for notice in resolutions:
            tally = notice["parsed"]["tally"]
            differences = _differences(_for_comparison(result), _numbers_of(tally), "")
            for item in result["items"]:
                listed = next((i["title"] for i in tally["items"]
                               if i["number"] == item["number"]), None)
                if listed != item["title"]:
                    differences.append(f"item {item['number']} title")
            households = notice["parsed"].get("households")
            if households is not None and not _households_agree(ballots, households):
                differences.append("the households listed with their answers are not the "
                                   "ballots counted")
            for difference in differences:
                report.problem(f"consultation {consultation_id}: {difference} (resolution "
                               f"notice {notice['verify_code']})")
            report.say(f"  Same as resolution notice {notice['verify_code']}: "
                       f"{'yes' if not differences else 'NO'}")
        leaves = ballot_leaves(consultation_id, round_, ballots)
        result["tree"] = check_tree(result, leaves, recorded, resolutions, event["seq"],
                                    report)
        if trees is not None:
            trees.append({"consultation_id": consultation_id, "round": round_,
                          "leaves": leaves, "root": result["tree"]["root"],
                          "recorded_root": (recorded.get("tree") or {}).get("root")})
    return results


def _print_result(result: dict[str, Any], ballots: int, timed: bool, report: Report) -> None:
    rule, roll, part = result["rule"], result["roll"], result["participation"]
    report.say(f"  Rule: {rule['code']} ({len(rule['conditions'])} condition(s))")
    report.say(f"  Roll: {roll['households']} households, {roll['owners']} owners, "
               f"{roll['area_m2']} m²; ballots returned: {part['households']} households, "
               f"{part['owners']} owners, {part['area_m2']} m² ({ballots} ballots)")
    if not timed:
        report.say("  (the events do not say when each ballot was cast; their order stands "
                   "in for it)")
    for item in result["items"]:
        verdict = {True: "PASSED", False: "NOT PASSED", None: "survey, no verdict"}[
            item["passed"]]
        report.say(f"  Item {item['number']} {item['title']}: {verdict}")
        for answer in item["counts"]:
            report.say(f"    {answer:<12} {item['counts'][answer]:>6} households "
                       f"{item['owners'][answer]:>6} owners {item['area_m2'][answer]:>12} m² "
                       f"{item['percentages'][answer]:>6}%")
        for rule_condition, c in zip(rule["conditions"], item["conditions"], strict=True):
            numerator, denominator = c["_exact"]
            share = Fraction(numerator, denominator) if denominator else Fraction(0)
            unit = " m²" if rule_condition["measure"] == "area" else ""
            report.say(f"    {rule_condition['count']} {rule_condition['measure']} "
                       f"{c['numerator']}/{c['denominator']}{unit} "
                       f"(of the {rule_condition['base']}) = {share} "
                       f"{SYMBOL[c['comparison']]} {c['threshold']} {'✓' if c['met'] else '✗'}")
        if item["owner_conflicts"]:
            report.say(f"    owners whose households answered differently (their most recent "
                       f"ballot counts): {item['owner_conflicts']}")


# --- 5. the ballot tree -----------------------------------------------------------------------
#
# RFC 6962 §2.1: a leaf's hash is SHA-256(0x00 || data), a node's SHA-256(0x01 || left ||
# right); a tree of n > 1 leaves splits after the largest power of two smaller than n.

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECEIPT_LENGTHS = (16, 8)  # receipts issued now, and before they were lengthened
SEPARATORS = frozenset(" -_.·—–\u3000\t")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree(leaves: list[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaves[start]
    middle = start + split(end - start)
    return node_hash(subtree(leaves, start, middle), subtree(leaves, middle, end))


def tree_root(leaves: list[bytes]) -> bytes:
    return subtree(leaves, 0, len(leaves)) if leaves else hashlib.sha256(b"").digest()


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root."""
    path, start, end = [], 0, len(leaves)
    while end - start > 1:
        middle = start + split(end - start)
        if index < middle:
            path.append(subtree(leaves, middle, end))
            end = middle
        else:
            path.append(subtree(leaves, start, middle))
            start = middle
    return path[::-1]


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Where an audit path leads (RFC 9162 §2.1.3.2), or None if it cannot belong to a tree
    of ``size`` leaves."""
    if not 0 <= index < size:
        return None
    fn, sn, running = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            running = node_hash(running, sibling)
        fn >>= 1
        sn >>= 1
    return running if sn == 0 else None


def folded_receipt(text: str) -> str:
    """A receipt as typed, reduced to its characters (full-width forms folded, capitals, no
    dashes or spaces)."""
    folded = unicodedata.normalize("NFKC", text[:100]).upper()
    return "".join(c for c in folded if c not in SEPARATORS)


def receipt_hash(consultation_id: int, round_: int, receipt: str) -> str:
    text = f"consult-receipt:{consultation_id}:{round_}:{folded_receipt(receipt)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def leaf_data(consultation_id: int, round_: int, digest: str, answers: dict[str, str]) -> bytes:
    """A counted ballot's leaf: canonical JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps({"answers": answers, "consultation": consultation_id,
                       "receipt_hash": digest, "round": round_}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ballot_leaves(consultation_id: int, round_: int,
                  ballots: list[dict[str, Any]]) -> list[tuple[bytes, str, bytes]]:
    """(leaf hash, receipt hash, leaf data) of every counted ballot, in the tree's order.
    Events written before receipts were recorded as hashes carry the receipt itself."""
    leaves = []
    for ballot in ballots:
        digest = ballot.get("receipt_hash")
        if digest is None and "receipt" in ballot:
            digest = receipt_hash(consultation_id, round_, str(ballot["receipt"]))
        data = leaf_data(consultation_id, round_, digest, ballot["choices"])
        leaves.append((leaf_hash(data), digest, data))
    return sorted(leaves)


def check_tree(result: dict[str, Any], leaves: list[tuple[bytes, str, bytes]],
               recorded: dict[str, Any], notices: list[dict[str, Any]], event_seq: int,
               report: Report) -> dict[str, Any]:
    """Rebuild the tree of a round's counted ballots and compare its root with the one
    recorded when the vote closed and the one on the resolution notices."""
    consultation_id = result["consultation_id"]
    mine = {"root": tree_root([leaf for leaf, _d, _data in leaves]).hex(),
            "size": len(leaves)}
    frozen = recorded.get("tree")
    if frozen is None:
        report.say("  Ballot tree: none was recorded (counted before ballot trees existed); "
                   f"rebuilt from the ballots: {mine['root']} ({mine['size']} ballots)")
        return mine
    same = (frozen.get("root"), frozen.get("size")) == (mine["root"], mine["size"])
    if not same:
        report.problem(f"consultation {consultation_id}: the ballot tree rebuilt from the "
                       f"ballots has the root {mine['root']} ({mine['size']} ballots), the "
                       f"one recorded has {frozen.get('root')} ({frozen.get('size')} ballots) "
                       f"(event #{event_seq})")
    report.say(f"  Ballot tree: root {mine['root']} over {mine['size']} ballots; same as "
               f"recorded at event #{event_seq}: {'yes' if same else 'NO'}")
    for notice in notices:
        printed = notice["parsed"].get("proof")
        if printed is None:
            continue
        if (printed.get("root"), printed.get("size")) != (mine["root"], mine["size"]):
            report.problem(f"consultation {consultation_id}: the ballot tree root on "
                           f"resolution notice {notice['verify_code']} is {printed.get('root')}"
                           f", the ballots give {mine['root']}")
        else:
            report.say(f"  Same root as resolution notice {notice['verify_code']}: yes")
    return mine


def check_receipt(code: str, rounds: list[dict[str, Any]], report: Report
                  ) -> list[dict[str, Any]]:
    """Find the ballot of a receipt code in every rebuilt tree and check its audit path
    against the root recorded for that tree (the rebuilt one if none was recorded)."""
    characters = folded_receipt(code)
    if len(characters) not in RECEIPT_LENGTHS or any(
            c not in RECEIPT_ALPHABET for c in characters):
        report.problem(f"{code!r} is not a receipt code (16 or 8 letters and digits)")
        return []
    found = []
    report.say("")
    for tree in rounds:
        digest = receipt_hash(tree["consultation_id"], tree["round"], code)
        hashes = [leaf for leaf, _d, _data in tree["leaves"]]
        for index, (leaf, leaf_digest, data) in enumerate(tree["leaves"]):
            if leaf_digest != digest:
                continue
            path = audit_path(index, hashes)
            recorded = tree["recorded_root"] or tree["root"]
            reached = root_from_path(index, len(hashes), leaf, path)
            holds = reached is not None and reached.hex() == recorded
            answers = json.loads(data)["answers"]
            report.say(f"Receipt {code}: counted in consultation {tree['consultation_id']}, "
                       f"round {tree['round']}")
            for number in sorted(answers, key=int):
                report.say(f"  item {number}: {answers[number]}")
            report.say(f"  leaf {index} of {len(hashes)}: {data.decode('utf-8')}")
            report.say(f"  leaf hash {leaf.hex()}")
            for n, sibling in enumerate(path, start=1):
                report.say(f"  path {n}: {sibling.hex()}")
            report.say(f"  the path leads to {reached.hex() if reached else '(nowhere)'}; "
                       f"the recorded root is {recorded}: "
                       f"{'PROVEN' if holds else 'NOT PROVEN'}")
            if not holds:
                report.problem(f"receipt {code}: its audit path does not lead to the recorded "
                               f"root of consultation {tree['consultation_id']}, round "
                               f"{tree['round']}")
            found.append({"consultation_id": tree["consultation_id"], "round": tree["round"],
                          "index": index, "size": len(hashes), "leaf": data.decode("utf-8"),
                          "leaf_hash": leaf.hex(), "path": [h.hex() for h in path],
                          "root": recorded, "answers": answers, "proven": holds})
    if not found:
        report.problem(f"receipt {code}: no counted ballot in this export has it")
    return found


# --- the command ------------------------------------------------------------------------------


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        export = json.load(stream)
    if export.get("format") != FORMAT or export.get("version") not in VERSIONS:
        raise ValueError(f"not a {FORMAT} file of version "
                         f"{' or '.join(map(str, VERSIONS))}")
    for key in ("scope", "chain_head", "events"):
        if key not in export:
            raise ValueError(f"no {key!r} in the export")
    return export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the audit export (JSON)")
    parser.add_argument("--consultation", type=int, default=None,
                        help="recount only this consultation")
    parser.add_argument("--receipt", default=None, metavar="CODE",
                        help="find the ballot of this receipt code and check its proof")
    parser.add_argument("--json", action="store_true",
                        help="print the findings and recounts as JSON")
    args = parser.parse_args(argv)
    try:
        export = load(args.export)
    except (OSError, ValueError) as exc:
        print(f"Cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    report = Report()
    scope = export["scope"]
    if scope == "consultation":
        about = export.get("consultation", {})
        report.say(f"Audit export of consultation {about.get('id')} "
                   f"“{about.get('title', '')}”, generated {export.get('generated_at')}")
    else:
        report.say(f"Audit export of the whole chain, generated {export.get('generated_at')}")
    try:
        by_seq, at = verify_events(export, report)
        notices = verify_notices(export, by_seq, at, report)
        only = args.consultation if args.consultation is not None else (
            export.get("consultation", {}).get("id") if scope == "consultation" else None)
        trees: list[dict[str, Any]] = []
        results = recount_consultations(export, by_seq, notices, only, report, trees)
        receipts = check_receipt(args.receipt, trees, report) if args.receipt else None
    except (KeyError, TypeError, ValueError) as exc:
        print(f"Cannot read {args.export}: malformed export ({exc!r})", file=sys.stderr)
        return 2
    report.say("")
    report.say("RESULT: everything holds" if not report.problems
               else f"RESULT: {len(report.problems)} problem(s) found")
    if args.json:
        found: dict[str, Any] = {} if receipts is None else {"receipt": receipts}
        json.dump({"ok": not report.problems, "problems": report.problems,
                   "recounts": results, **found}, sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print("\n".join(report.lines))
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
