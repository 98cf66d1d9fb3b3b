"""The ``dlcourse`` command: execute notebooks, generate labs, grade submissions (chapter 0)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import grade, labs, nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlcourse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="re-execute notebooks in place (outputs are committed)")
    ex.add_argument("notebooks", nargs="+", type=Path)
    ex.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    mk = sub.add_parser("make-labs", help="write labs/ from solutions/")
    mk.add_argument("--solutions", type=Path, default=nb.ROOT / "solutions")
    mk.add_argument("--labs", type=Path, default=nb.ROOT / "labs")
    gr = sub.add_parser("grade", help="grade a folder of submitted notebooks for one lab")
    gr.add_argument("lab", help="the lab's name, e.g. lab01_deep_networks")
    gr.add_argument("submissions", type=Path, help="folder of submitted .ipynb files, one per student")
    gr.add_argument("--out", type=Path, default=Path("grades"), help="where scores.csv and summary.md go")
    gr.add_argument("--timeout", type=float, default=300, help="seconds per submission (default 300)")
    gr.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell and per check (default 60)")
    gr.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default 1)")
    gr.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per submission (default 4096)")
    args = parser.parse_args(argv)
    if args.command == "execute":
        for path in args.notebooks:
            seconds = nb.execute(path, timeout=args.timeout)
            print(f"{seconds:7.1f} s  {path}", flush=True)
    elif args.command == "make-labs":
        for name in labs.generate(args.solutions, args.labs):
            print(f"wrote {args.labs / name}")
    else:
        try:
            results = grade.grade(args.lab, args.submissions, args.out, jobs=args.jobs, timeout=args.timeout,
                                  cell_timeout=args.cell_timeout, memory_mb=args.memory_mb)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        print(f"graded {len(results)} submissions: {args.out / 'scores.csv'}, {args.out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
