"""`python -m bisonflow.sample OUT_DIR [--records N] [--seed S] [--month YYYY-MM]`.

For a person who wants to look at (or upload) a month of sample inputs without writing code.
The snapshot is written in the column types GBIF published for that month
(bisonflow.gbif.schema).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bisonflow.layout import MonthError, parse_month
from bisonflow.sample.generate import DEFAULT_RECORDS, DEFAULT_SEED, generate_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bisonflow.sample", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--month", help="snapshot month YYYY-MM (default: the fixed sample month)")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error(f"--records must be at least 1, got {args.records}")
    try:
        snapshot = parse_month(args.month) if args.month else None
    except MonthError as exc:
        parser.error(str(exc))  # one line, exit status 2
    manifest = generate_sample(args.out_dir, args.records, args.seed, snapshot, progress=print)
    print(json.dumps(manifest.to_dict()["expected"]["dropped"]))
    print(f"us_valid_records: {manifest.expected['us_valid_records']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
