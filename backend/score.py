"""Batch scoring from the command line, for the system's cron when the app is not running:

    python -m backend.score --function flurry_predict_churn --source demo.customers --output scores.customers
    python -m backend.score --schedule sch1a2b3c4d5     # run one stored schedule now
    python -m backend.score --list                       # deployed functions and schedules

The warehouse is the one the app uses (FLURRY_WAREHOUSE, flurry.toml, or the default file). DuckDB lets one
program at a time open its file: while the app runs, this command says so and exits with status 2 (the app's
own scheduler runs the schedules then).
"""

from __future__ import annotations

import argparse
import sys

from backend.config import warehouse_config
from backend.errors import FlurryError, WarehouseLockedError
from backend.scoring_jobs import OutputMode, ScoringState
from backend.warehouse.base import TableRef
from backend.workspace import Workspace, open_workspace

LOCKED_EXIT = 2


def _table(text: str) -> TableRef:
    schema, dot, name = text.partition(".")
    if not dot or not schema or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not schema.table")
    return TableRef(schema, name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend.score", description="Score a table with a deployed model.")
    parser.add_argument("--function", help="the deployed SQL function, e.g. flurry_predict_churn")
    parser.add_argument("--source", type=_table, help="the table to score, as schema.table")
    parser.add_argument("--output", type=_table, help="where the scores go, as schema.table")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--replace", action="store_true", help="replace the output table if it exists")
    how.add_argument("--append", action="store_true", help="add the new scores to the output table")
    parser.add_argument("--schedule", help="run this stored schedule now instead")
    parser.add_argument("--list", action="store_true", help="list deployed functions and schedules")
    return parser


def _list(ws: Workspace) -> int:
    for deployment in ws.registry.list_deployments():
        print(f"function {deployment.function_name}  model {deployment.model_id}")
    for schedule in ws.schedules.all():
        state = "on" if schedule.enabled else "off"
        print(f"schedule {schedule.schedule_id}  {schedule.function_name}  {schedule.source} -> {schedule.output}  "
              f"{schedule.description}  [{state}]")
    return 0


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        ws = open_workspace(warehouse_config(), seed_demo=False)
    except WarehouseLockedError as exc:
        print(f"{exc.message}\nThe Flurry app has it open: while the app runs, its own scheduler runs the schedules; "
              "stop the app to score from here.", file=sys.stderr)
        return LOCKED_EXIT
    try:
        if args.list:
            return _list(ws)
        assert ws.scoring is not None
        if args.schedule:
            schedule = ws.schedules.get(args.schedule)
            scoring_id = ws.scoring.request(schedule.function_name, schedule.source, schedule.output, schedule.mode,
                                            schedule_id=schedule.schedule_id)
        elif args.function and args.source and args.output:
            mode = OutputMode.APPEND if args.append else OutputMode.REPLACE if args.replace else OutputMode.NEW
            scoring_id = ws.scoring.request(args.function, args.source, args.output, mode)
        else:
            print("Give --function, --source and --output, or --schedule ID, or --list.", file=sys.stderr)
            return 1
        result = ws.scoring.run(scoring_id)
        print(result.message)
        return 0 if result.state is ScoringState.SUCCEEDED else 1
    except FlurryError as exc:
        print(f"{exc.message}" + (f"\n{exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    finally:
        ws.close()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
