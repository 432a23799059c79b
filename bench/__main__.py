"""``python -m bench NAME...``: run benchmarks by name (all of them without a name)."""

from __future__ import annotations

import argparse
import sys

from bench import pdf

BENCHMARKS = {"pdf": pdf.main}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME",
                        help=f"one of: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, for checking that a benchmark still runs")
    args = parser.parse_args()
    failed = [name for name in args.names or list(BENCHMARKS)
              if not BENCHMARKS[name](quick=args.quick)]
    if failed:
        print(f"Targets missed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
