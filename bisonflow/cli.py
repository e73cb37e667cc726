"""`bisonflow`: run the BISON workflow locally, or serve the local emulator for the AWS CLI."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bisonflow.layout import MonthError, MonthLayout
from bisonflow.local import PortInUse


def _month(value: str) -> str:
    try:
        return MonthLayout.for_month(value).month
    except MonthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bisonflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local emulator")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser(
        "up", help="serve the emulator with the workflow deployed, until Ctrl-C"
    )
    up.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    up.add_argument("--records", type=_positive, default=250_000, help="sample GBIF records")
    up.add_argument("--month", type=_month, default=None, help="month to publish (default: now)")

    run = commands.add_parser("run", help="run the whole workflow locally and keep its record")
    run.add_argument("--month", type=_month, default=None, help="YYYY-MM (default: this month)")
    run.add_argument("--records", type=_positive, default=250_000, help="sample GBIF records")
    run.add_argument("--out", type=Path, default=Path("runs"), help="where to write the run")
    run.add_argument("--port", type=int, default=0, help="emulator port (default: any free)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return local_up(args) if args.command == "local" else run(args)
    except PortInUse as exc:
        parser.exit(2, f"bisonflow: {exc}\n")


def _log(message: str) -> None:
    print(message, flush=True)


def local_up(args: argparse.Namespace) -> int:
    from bisonflow.local.runtime import LocalRuntime, LocalSettings, current_month

    month = args.month or current_month()
    with LocalRuntime(LocalSettings(port=args.port, records=args.records), progress=_log) as rt:
        rt.publish_snapshot(month)
        assert rt.deployment
        _log(
            f"\nBISON workflow deployed; GBIF snapshot for {month} published.\n"
            f"  endpoint:      {rt.endpoint_url}\n"
            f"  state machine: {rt.deployment.state_machine_arn}\n"
            f"  bucket:        s3://{rt.deployment.bucket}\n\n"
            "Try (any credentials work):\n"
            f"  aws --endpoint-url {rt.endpoint_url} --region us-east-1 "
            "stepfunctions list-state-machines\n"
            f"  aws --endpoint-url {rt.endpoint_url} --region us-east-1 "
            f"stepfunctions start-execution --state-machine-arn {rt.deployment.state_machine_arn}"
            " --input '{}'\n\nCtrl-C stops it."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _log("stopping")
    return 0


def run(args: argparse.Namespace) -> int:
    from bisonflow.executions import download_prefixes, follow, save_record
    from bisonflow.local.runtime import LocalRuntime, LocalSettings, current_month

    month = args.month or current_month()
    layout = MonthLayout.for_month(month)
    started = time.monotonic()
    settings = LocalSettings(port=args.port, records=args.records)
    with LocalRuntime(settings, progress=_log) as rt:
        rt.publish_snapshot(month)
        sfn, s3 = rt.clients["stepfunctions"], rt.clients["s3"]
        arn = rt.start_execution(month)
        _log(f"started {arn}")
        description = follow(sfn, arn, _log)
        run_dir = save_record(sfn, arn, args.out, description)
        assert rt.deployment
        files = download_prefixes(
            s3,
            rt.deployment.bucket,
            [layout.riis_annotated_key, layout.summary_prefix],
            run_dir / "outputs",
        )
    status = description["status"]
    _log(
        f"\n{status} in {time.monotonic() - started:.1f}s: {run_dir}/ "
        f"(execution.json, history.json, {len(files)} output files under outputs/)"
    )
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
