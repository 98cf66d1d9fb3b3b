"""The ``dlcourse`` command: execute notebooks and generate labs (chapter 0)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import labs, nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlcourse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="re-execute notebooks in place (outputs are committed)")
    ex.add_argument("notebooks", nargs="+", type=Path)
    ex.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    mk = sub.add_parser("make-labs", help="write labs/ from solutions/")
    mk.add_argument("--solutions", type=Path, default=nb.ROOT / "solutions")
    mk.add_argument("--labs", type=Path, default=nb.ROOT / "labs")
    args = parser.parse_args(argv)
    if args.command == "execute":
        for path in args.notebooks:
            seconds = nb.execute(path, timeout=args.timeout)
            print(f"{seconds:7.1f} s  {path}", flush=True)
    else:
        for name in labs.generate(args.solutions, args.labs):
            print(f"wrote {args.labs / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
