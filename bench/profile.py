"""Where a vote's CPU goes: the web vote's three requests and the API's two, in process
under cProfile, their own time grouped by layer (SQLAlchemy, Flask and Werkzeug, Jinja,
Babel, the database driver, consult's own code, …), with the heaviest functions.

In process (the test client), one request at a time: it says what the vote path costs, not
how it queues; the load test says that. Writes ``bench/results/profile-vote.{json,md}``.
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench import data, load
from bench.common import Report, app_on, fresh_database

# Own time is put in the first layer whose marker is in the function's file name.
LAYERS = (
    ("SQLAlchemy", ("/sqlalchemy/",)),
    ("Jinja templates", ("/jinja2/", "/markupsafe/", ".html")),
    ("Babel and translations", ("/babel/", "/flask_babel/")),
    ("WTForms and CSRF", ("/wtforms/", "/flask_wtf/", "/itsdangerous/")),
    ("Flask, Werkzeug and extensions", ("/flask/", "/werkzeug/", "/flask_", "/click/")),
    ("marshmallow and flask-smorest", ("/marshmallow/", "/webargs/", "/apispec/")),
    ("consult", ("/consult/",)),
    ("database driver", ("/psycopg/", "sqlite3")),
)
BUILTIN_LAYERS = (
    ("database driver", ("sqlite3", "psycopg", "execute", "commit", "fetch")),
    ("hashing", ("sha256", "sha1", "hmac", "openssl", "scrypt", "blake2")),
    ("JSON", ("json", "dumps", "loads")),
)


def layer_of(filename: str, function: str) -> str:
    """The layer a profiled function belongs to (its own time is counted there)."""
    for name, markers in LAYERS:
        if any(marker in filename for marker in markers):
            return name
    if filename == "~":  # a built-in: named by what it is
        for name, markers in BUILTIN_LAYERS:
            if any(marker in function for marker in markers):
                return name
        return "Python built-ins"
    return "other"


def breakdown(stats: pstats.Stats) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Own time per layer (seconds), and the 25 functions with the most own time."""
    layers: dict[str, float] = {}
    rows = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in (
            stats.stats.items()):  # type: ignore[attr-defined]
        layer = layer_of(filename, function)
        layers[layer] = layers.get(layer, 0.0) + own
        rows.append({"function": f"{filename.split('site-packages/')[-1]}:{line}({function})",
                     "layer": layer, "calls": calls, "own_s": own, "cumulative_s": cumulative})
    rows.sort(key=lambda r: -r["own_s"])
    return layers, rows[:25]


def _api_vote(client: Any, voter: load.Voter, token: str) -> None:
    path = f"/api/v1/consultations/{voter.consultation}/ballot"
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(path, headers=headers).status_code == 200
    answer = client.put(path, headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                        json={"choices": [{"item_id": i, "choice": "agree"}
                                          for i in voter.items]})
    assert answer.status_code == 200, answer.status_code


def _web_vote(client: Any, voter: load.Voter) -> None:
    path = f"/consultations/{voter.consultation}/vote"
    text = client.get(path).get_data(as_text=True)
    choices = {f"item_{i}": "agree" for i in voter.items}
    text = client.post(path, data={"csrf_token": load.CSRF.search(text).group(1),
                                   **choices}).get_data(as_text=True)
    done = client.post(f"{path}/confirm", data={
        "csrf_token": load.CSRF.search(text).group(1),
        "submission": load.SUBMISSION.search(text).group(1), **choices})
    assert done.status_code == 302, done.status_code


def _signed_in_web(app: Any, voter: load.Voter) -> Any:
    client = app.test_client()
    text = client.get("/login").get_data(as_text=True)
    answer = client.post("/login", data={"csrf_token": load.CSRF.search(text).group(1),
                                         "username": voter.username,
                                         "password": data.PASSWORD})
    assert answer.status_code == 302, answer.status_code
    return client


def profile(app: Any, voters: list[load.Voter], warm: int) -> dict[str, Any]:
    """Profile ``len(voters) - 2 * warm`` votes, half on the web and half through the API
    (after ``warm`` of each unprofiled), each path on its own."""
    half = len(voters) // 2
    web = [(_signed_in_web(app, v), v) for v in voters[:half]]
    api = []
    for voter in voters[half:]:
        client = app.test_client()
        answer = client.post("/api/v1/auth/password", json={"username": voter.username,
                                                            "password": data.PASSWORD})
        assert answer.status_code == 200, answer.status_code
        api.append((client, voter, answer.json["access_token"]))
    for client, voter in web[:warm]:
        _web_vote(client, voter)
    for client, voter, token in api[:warm]:
        _api_vote(client, voter, token)
    results = {}
    for name, run in (("web", lambda: [_web_vote(c, v) for c, v in web[warm:]]),
                      ("api", lambda: [_api_vote(c, v, t) for c, v, t in api[warm:]])):
        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        stats = pstats.Stats(profiler)
        layers, top = breakdown(stats)
        total = sum(layers.values())
        votes = len(web) - warm if name == "web" else len(api) - warm
        results[name] = {
            "votes": votes, "profiled_ms_per_vote": round(total * 1000 / votes, 1),
            "layers": {k: {"share": round(v / total, 3),
                           "ms_per_vote": round(v * 1000 / votes, 2)}
                       for k, v in sorted(layers.items(), key=lambda kv: -kv[1])},
            "top": [{**r, "own_s": round(r["own_s"], 3), "cumulative_s": round(
                r["cumulative_s"], 3)} for r in top]}
    return results


def main(quick: bool = False, households: int = 10_000, db_kind: str = "sqlite",
         workers: int | None = None) -> bool:
    """Profile the web and API vote paths; write ``bench/results/profile-vote.{json,md}``."""
    del workers, households  # in process; a district of its own size
    name = "profile-vote" + ("" if db_kind == "sqlite" else f"-{db_kind}")
    report = Report(name, "Where a vote's CPU goes (cProfile, in process)")
    count, warm = (12, 2) if quick else (240, 20)
    with tempfile.TemporaryDirectory(prefix="consult-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database(db_kind, workdir) as url:
            with app_on(url, workdir) as app:
                data.generate(max(400, count * 4), max(2, count // 50))
                voters = [load.Voter(*row) for row in data.voters(count)]
            # Each request in a context of its own, as under a server (not inside the one
            # the generation pushed).
            app.config.update(LOGIN_RATE_LIMIT="1000000 per minute",
                              ACCESS_CODE_RATE_LIMIT="1000000 per minute")
            results = profile(app, voters, warm)
    report.measurements.update(results)
    for path, result in results.items():
        label = "web" if path == "web" else "API"
        report.figure(f"Profiled CPU per {label} vote ({result['votes']} votes)",
                      result["profiled_ms_per_vote"], "ms")
        for layer, figures in list(result["layers"].items())[:6]:
            report.figure(f"{label} vote: {layer}", round(figures["share"] * 100, 1), "%")
    lines = ["## Own time by layer", "",
             "cProfile's own time of each function, summed by the layer its file belongs to "
             "(`bench/profile.py`); the profiler itself slows Python code down, so the shares "
             "matter more than the milliseconds.", "",
             "| Layer | Web vote | API vote |", "|---|---|---|"]
    for layer in results["web"]["layers"]:
        web, api = results["web"]["layers"][layer], results["api"]["layers"].get(layer)
        lines.append(f"| {layer} | {web['share'] * 100:.1f} % ({web['ms_per_vote']} ms) | "
                     + (f"{api['share'] * 100:.1f} % ({api['ms_per_vote']} ms) |"
                        if api else "— |"))
    for path in ("web", "api"):
        lines += ["", f"## The heaviest functions, {path} vote", "",
                  "| Function | Layer | Calls | Own s | Cumulative s |", "|---|---|---|---|---|"]
        lines += [f"| `{r['function']}` | {r['layer']} | {r['calls']} | {r['own_s']} | "
                  f"{r['cumulative_s']} |" for r in results[path]["top"]]
    report.notes += [*lines, ""]
    path = report.write(quick)
    print(path.read_text(encoding="utf-8")[:4000])
    return report.passed
