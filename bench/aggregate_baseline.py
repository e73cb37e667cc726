"""The aggregate benchmark's baseline: the same run on an older commit's SQL and stand-in.

`bench.aggregate` exports the baseline commit's `bisonflow` with `git archive` and runs this
file as a script with that tree first on PYTHONPATH, so `bisonflow` here is the old code and
`aggregate_steps` (this file's neighbour, found through the script's own folder) is today's
timing harness. The inputs come from a JSON spec the parent writes; the timings go to stdout
as one JSON line, the last line printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The script's own folder is on its path at run time (above); not to a checker run from the root.
from aggregate_steps import SampleFiles, in_moto, run  # type: ignore[import-not-found]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text("utf-8"))
    sample = SampleFiles(
        snapshot_dir=Path(spec["snapshot_dir"]),
        county_shapefile=Path(spec["county_shapefile"]),
        aiannh_shapefile=Path(spec["aiannh_shapefile"]),
        riis_csv=Path(spec["riis_csv"]),
        species_match_json=Path(spec["species_match_json"]),
        month=spec["month"],
    )
    timing = in_moto(lambda: run(sample, workgroup="baseline"))
    print(
        json.dumps(
            {
                "steps": timing.steps,
                "cpu": timing.cpu,
                "cpu_steps": timing.cpu_steps,
                "wall": timing.wall,
                "result": timing.result,
                "statements": timing.statements,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
