"""``python -m bench NAME...``: run benchmarks by name (all of them without a name).

- ``pdf``: notices and paper ballots (``bench/results/pdf.md``);
- ``scale``: district data, peak voting against a baseline, the tally against a hand-written
  aggregate, the results and notice pages, ``flask audit verify`` and the households import
  (``bench/results/latest.md``). ``--households 1000000`` is the city case; ``--db postgresql``
  runs it on a fresh database of the local PostgreSQL server;
- ``api``: the vote through the JSON API against the vote on the web, same server, same run
  (``bench/results/api.md``; ``--db postgresql`` too);
- ``imports``: how long the households and ballots imports hold the write lock
  (``bench/results/imports.md``; ``--db postgresql`` for PostgreSQL); run only when named;
- ``dashboard``: the overview dashboard at 138 and 1,000 compounds
  (``bench/results/dashboard.md``); run only when named;
- ``profile``: where a vote's CPU goes, web and API, by layer (cProfile in process;
  ``bench/results/profile-vote.md``); run only when named;
- ``chains``: 50 consultations voting at once through three app instances on PostgreSQL, the
  waits for and holds of each audit chain's head row (``bench/results/chains.md``); run only
  when named;
- ``tally``: only the tally of ``--households`` households against the aggregate
  (``bench/results/tally.md``), e.g. the city case alone; run only when named.

``--quick`` runs everything on tiny data (CI): it checks that every step still works, and fails
only on wrong results, not on timings. ``make bench`` runs the full benchmarks.
"""

from __future__ import annotations

import argparse
import sys

from bench import api_vote, chains, dashboard, imports, pdf, profile, scale

BENCHMARKS = {"pdf": pdf.main, "scale": scale.main, "api": api_vote.main, "tally": scale.main_tally,
              "imports": imports.main, "dashboard": dashboard.main,
              "profile": profile.main, "chains": chains.main}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME",
                        help=f"one of: {', '.join(BENCHMARKS)} (default: pdf, scale and api)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, for checking that a benchmark still runs")
    parser.add_argument("--households", type=int, default=10_000, metavar="N",
                        help="households of the district for the scale benchmark (default "
                             "10,000; 1,000,000 for the city case, which also times the tally "
                             "of a million households)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                        help="the scale benchmark's database: a SQLite file in WAL mode "
                             "(default) or a fresh database on the local PostgreSQL")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers of the scale benchmark (default: 2 per core)")
    args = parser.parse_args()
    scale_options = {"households": args.households, "db_kind": args.db,
                     "workers": args.workers}
    options = {"scale": scale_options, "tally": scale_options, "api": scale_options,
               "imports": {"db_kind": args.db}}
    # ``tally`` repeats a part of ``scale``, and ``imports`` takes minutes: they run only when
    # named.
    failed = [name for name in args.names or ["pdf", "scale", "api"]
              if not BENCHMARKS[name](quick=args.quick, **options.get(name, {}))]
    if failed:
        print(f"Targets missed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
