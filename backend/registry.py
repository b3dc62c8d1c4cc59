"""Flurry's own metadata (runs, run events, model versions, artifacts, deployments) in the FLURRY schema.

Created on first use and versioned with simple numbered migrations. Only portable SQL with bound values,
so every warehouse adapter can host it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from backend.digests import sha256_bytes
from backend.errors import ArtifactIntegrityError, InvalidTrainingOptionError, ModelNotFoundError
from backend.evaluation.thresholds import DEFAULT_RULE, DecisionThreshold
from backend.registry_migrations import migrations
from backend.registry_records import (
    Deployment,
    ModelNotes,
    ModelVersion,
    Run,
    RunEvent,
    RunState,
    deployment_from_row,
    run_from_row,
    version_from_row,
)
from backend.warehouse.base import METADATA_SCHEMA, TableRef, Warehouse

logger = logging.getLogger(__name__)

# Bytes per stored artifact row, each written by one bound INSERT: the connector sends a bound BINARY as hex
# text, so 384 KiB travels as 768 KiB, inside the 1 MB Snowflake recommends for a statement's bound data.
ARTIFACT_PART_BYTES = 384 * 1024
# Parts read per query: 12 MiB, well inside a Streamlit-in-Snowflake app's 32 MB result limit.
PARTS_PER_READ = 32


def artifact_parts(content: bytes, part_bytes: int | None = None) -> list[bytes]:
    """`content` cut into consecutive parts of at most `part_bytes` (one empty part for empty content)."""
    part_bytes = part_bytes or ARTIFACT_PART_BYTES
    return [content[i:i + part_bytes] for i in range(0, len(content), part_bytes)] or [b""]


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


_event_seq_lock = threading.Lock()
_last_event_seq = 0


def next_event_seq() -> int:
    """A run event's number: microseconds since the epoch × 1000 plus a random draw below 1000, and always above
    the last one this process gave. Two writers on different machines (the app and a training procedure)
    would need the same microsecond and the same draw to collide, where max(seq) + 1 collides whenever they
    write at once."""
    global _last_event_seq
    with _event_seq_lock:
        candidate = time.time_ns() // 1000 * 1000 + secrets.randbelow(1000)
        _last_event_seq = max(candidate, _last_event_seq + 1)
        return _last_event_seq


class Registry:
    """Reads and writes Flurry's metadata tables through a warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def _query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        # Flurry's own tables and aliases are unquoted lower-case names, which Snowflake reports in upper case
        frame = self.wh.query(sql, params)
        frame.columns = [str(c).lower() for c in frame.columns]
        return frame

    def t(self, name: str) -> str:
        """Fully qualified, quoted name of one of Flurry's metadata tables."""
        return self.wh.qualify(TableRef(METADATA_SCHEMA, name))

    # --- migrations ------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Create or upgrade the FLURRY schema; return the schema version now in force. A schema already at the
        newest version costs two reads and no DDL: every app start (on the warehouse runtime, every viewer's)
        runs this, and a CREATE there would need CREATE privileges the app's role may lack once FLURRY exists,
        and commits any open transaction."""
        steps = migrations(self.t, self.wh.binary_type, self.wh.timestamp_type,
                           self.wh.metadata_objects_sql(METADATA_SCHEMA))
        if self.wh.table_exists(TableRef(METADATA_SCHEMA, "schema_migrations")):
            current = self._schema_version()
            if current >= len(steps):
                return current
        else:
            self.wh.ensure_schema(METADATA_SCHEMA)
            self.wh.execute(steps[0][0])
            current = self._schema_version()
        for version, statements in enumerate(steps, start=1):
            if version <= current:
                continue
            # No transaction: Snowflake commits DDL by itself. Every statement is idempotent instead, so a
            # migration cut short is simply run again; the version is recorded last.
            for statement in statements:
                self.wh.execute(statement)
            self.wh.execute(f"INSERT INTO {self.t('schema_migrations')} VALUES (?, ?)", [version, now()])
            current = version
        return current

    def _schema_version(self) -> int:
        done = self._query(f"SELECT coalesce(max(version), 0) AS v FROM {self.t('schema_migrations')}")
        return int(done["v"].iloc[0])

    # --- runs ------------------------------------------------------------------------------------
    def create_run(self, *, table: TableRef, target: str, task: str, metric: str, time_budget: int,
                   config: dict[str, Any], job_dir: str) -> str:
        run_id = new_id("r")
        stamp = now()
        with self.wh.transaction():
            self.wh.execute(
                f"INSERT INTO {self.t('runs')} (run_id, state, source_schema, source_table, target, task, metric, "
                f"time_budget, config_json, created_at, updated_at, job_dir, message) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                [run_id, RunState.QUEUED.value, table.schema, table.name, target, task, metric, time_budget,
                 json.dumps(config), stamp, stamp, job_dir],
            )
            self._event(run_id, "state", {"state": RunState.QUEUED.value})
        return run_id

    def set_run_state(self, run_id: str, state: RunState, *, message: str | None = None,
                      worker_pid: int | None = None, at: datetime | None = None) -> bool:
        """Move a run to `state` if TRANSITIONS allow it from the state it is in; whether it moved. `at` is when
        that happened when it was earlier than now (a worker's finish, seen a moment later)."""
        stamp = at if at is not None and at <= now() else now()
        allowed = [s.value for s in RunState if s.may_become(state)]
        with self.wh.transaction():
            # one compare-and-set: the state it moves from is in the WHERE clause, so of two writers (the app
            # and a training procedure, under READ COMMITTED) only one can move it, and the other is told
            moved = self.wh.update(
                f"UPDATE {self.t('runs')} SET state = ?, updated_at = ?, message = coalesce(?, message), "
                f"worker_pid = coalesce(?, worker_pid) WHERE run_id = ? AND state IN ({', '.join('?' * len(allowed))})",
                [state.value, stamp, message, worker_pid, run_id, *allowed],
            ) if allowed else 0
            if moved == 0:
                logger.info("run %s not moved to %s (unknown, or in a state that may not become it)", run_id,
                            state.value)
                return False
            self._event(run_id, "state", {"state": state.value, "message": message or ""}, at=stamp)
        return True

    def set_run_message(self, run_id: str, message: str) -> None:
        """Say more about how a run is or ended, without moving it."""
        self.wh.execute(f"UPDATE {self.t('runs')} SET message = ? WHERE run_id = ?", [message, run_id])

    def set_run_rows(self, run_id: str, *, used: int, dropped: int, eligible: int) -> None:
        self.wh.execute(f"UPDATE {self.t('runs')} SET rows_used = ?, rows_dropped = ?, rows_eligible = ? "
                        f"WHERE run_id = ?", [used, dropped, eligible, run_id])

    def _event(self, run_id: str, kind: str, payload: dict[str, Any], *, at: datetime | None = None) -> None:
        self.wh.execute(
            f"INSERT INTO {self.t('run_events')} (run_id, event_seq, event_at, kind, payload) VALUES (?, ?, ?, ?, ?)",
            [run_id, next_event_seq(), at or now(), kind, json.dumps(payload)],
        )

    def add_events(self, run_id: str, kind: str, payloads: list[dict[str, Any]]) -> None:
        if not payloads:
            return
        with self.wh.transaction():
            for payload in payloads:
                self._event(run_id, kind, payload)

    def events(self, run_id: str, kind: str | None = None) -> list[RunEvent]:
        # events from before event_seq have a small per-run seq, which sorts before every event_seq
        sql = f"SELECT coalesce(event_seq, seq) AS seq, event_at, kind, payload FROM {self.t('run_events')} WHERE run_id = ?"
        params: list[Any] = [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        frame = self._query(sql + " ORDER BY seq", params)
        return [RunEvent(int(r.seq), r.event_at, r.kind, json.loads(r.payload)) for r in frame.itertuples()]

    def last_event_at(self, run_id: str) -> datetime | None:
        """When anything was last recorded about the run (its work's last word, for runs that beat)."""
        frame = self._query(f'SELECT max(event_at) AS "last" FROM {self.t("run_events")} WHERE run_id = ?', [run_id])
        last = frame["last"].iloc[0] if not frame.empty else None
        return None if last is None or pd.isna(last) else pd.Timestamp(last).to_pydatetime()

    def get_run(self, run_id: str) -> Run:
        frame = self._query(f"SELECT * FROM {self.t('runs')} WHERE run_id = ?", [run_id])
        if frame.empty:
            raise ModelNotFoundError(f"No training run has the id {run_id!r}.")
        return run_from_row(frame.iloc[0])

    def list_runs(self, *, states: list[RunState] | None = None) -> list[Run]:
        frame = self._query(f"SELECT * FROM {self.t('runs')} ORDER BY created_at DESC")
        runs = [run_from_row(row) for _, row in frame.iterrows()]
        return [r for r in runs if states is None or r.state in states]

    # --- model versions and artifacts ------------------------------------------------------------
    def add_model_version(self, version: ModelVersion, artifacts: dict[str, bytes]) -> None:
        """Write the version and its artifacts in one transaction; the version is READY only once each
        artifact reads back with the checksum it was written with."""
        with self.wh.transaction():
            for name, content in artifacts.items():
                digest, stamp = sha256_bytes(content), now()
                for part, piece in enumerate(artifact_parts(content)):
                    self.wh.execute(
                        f"INSERT INTO {self.t('artifacts')} (model_id, name, sha256, size_bytes, content, created_at, "
                        "part) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [version.model_id, name, digest, len(content), piece, stamp, part])
            for name, content in artifacts.items():
                self.get_artifact(version.model_id, name, expected_sha256=sha256_bytes(content))
            self.wh.execute(
                f"INSERT INTO {self.t('model_versions')} (model_id, run_id, created_at, name, source_schema, "
                "source_table, target, task, metric, best_estimator, features_json, metrics_json, leaderboard_json, "
                "importance_json, versions_json, sha256, status, report_json, baseline_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'READY', ?, ?)",
                [version.model_id, version.run_id, version.created_at, version.name, version.table.schema,
                 version.table.name, version.target, version.task.value, version.metric, version.best_estimator,
                 json.dumps([f.to_dict() for f in version.features]), json.dumps(version.metrics.to_dict()),
                 json.dumps([e.to_dict() for e in version.leaderboard]),
                 json.dumps(version.importance), json.dumps(version.versions), version.sha256,
                 json.dumps(version.report.to_dict()) if version.report is not None else None,
                 json.dumps(version.baseline.to_dict()) if version.baseline is not None else None],
            )
            if version.has_threshold:
                assert version.report is not None and version.report.default_threshold is not None
                self._insert_threshold(version.model_id, version.report.default_threshold, "max_f1", {},
                                       version.created_at)

    def get_artifact(self, model_id: str, name: str, *, expected_sha256: str | None = None) -> bytes:
        """Return an artifact's bytes after checking them against the recorded sha256.
        Raises ArtifactIntegrityError when missing or altered."""
        content, recorded = self._artifact_bytes(model_id, name)
        actual = sha256_bytes(content)
        if actual != recorded or (expected_sha256 is not None and actual != expected_sha256):
            raise ArtifactIntegrityError(
                f"The stored {name!r} artifact of model {model_id} does not match its checksum; "
                "Flurry will not load it.",
                hint="Retrain the model.",
            )
        return content

    def _artifact_bytes(self, model_id: str, name: str) -> tuple[bytes, str]:
        """The artifact's parts joined in order, PARTS_PER_READ parts per query, and its recorded sha256 (rows
        written before parts existed have no part number and hold the whole artifact; parts written larger by an
        earlier Flurry read the same way)."""
        where = f"FROM {self.t('artifacts')} WHERE model_id = ? AND name = ?"
        first = self._query(f"SELECT sha256, size_bytes, content {where} AND coalesce(part, 0) = 0", [model_id, name])
        if first.empty:
            raise ArtifactIntegrityError(f"The model {model_id} has no stored {name!r} artifact.",
                                         hint="Retrain the model.")
        pieces, size = [bytes(first["content"].iloc[0])], int(first["size_bytes"].iloc[0])
        while sum(map(len, pieces)) < size:
            more = self._query(f"SELECT part, content {where} AND part >= ? AND part < ? ORDER BY part",
                               [model_id, name, len(pieces), len(pieces) + PARTS_PER_READ])
            expected = range(len(pieces), len(pieces) + len(more))
            if more.empty or [int(p) for p in more["part"]] != list(expected):
                break  # a part is missing: the checksum below says so
            pieces.extend(bytes(content) for content in more["content"])
        return b"".join(pieces), str(first["sha256"].iloc[0])

    def get_model_version(self, model_id: str) -> ModelVersion:
        frame = self._query(
            f"SELECT * FROM {self.t('model_versions')} WHERE model_id = ? AND status = 'READY'", [model_id]
        )
        if frame.empty:
            raise ModelNotFoundError(f"No model has the id {model_id!r}.",
                                     hint="Pick a model from the list, or train one first.")
        return version_from_row(frame.iloc[0])

    def model_for_run(self, run_id: str) -> ModelVersion | None:
        frame = self._query(f"SELECT * FROM {self.t('model_versions')} WHERE run_id = ? AND status = 'READY'", [run_id])
        return None if frame.empty else version_from_row(frame.iloc[0])

    def list_model_versions(self) -> list[ModelVersion]:
        frame = self._query(f"SELECT * FROM {self.t('model_versions')} WHERE status = 'READY' ORDER BY created_at DESC")
        return [version_from_row(row) for _, row in frame.iterrows()]

    # --- decision thresholds ----------------------------------------------------------------------
    def _insert_threshold(self, model_id: str, threshold: float, how: str, detail: dict[str, Any],
                          at: datetime) -> None:
        self.wh.execute(
            f"INSERT INTO {self.t('decision_thresholds')} (model_id, seq, threshold, how, detail_json, chosen_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", [model_id, next_event_seq(), float(threshold), how, json.dumps(detail), at])

    def set_threshold(self, model_id: str, threshold: float, how: str, detail: dict[str, Any] | None = None
                      ) -> DecisionThreshold:
        """Record a new decision threshold for a binary version (earlier choices stay, for the record).
        Raises ModelNotFoundError, InvalidTrainingOptionError for a version without thresholds or a value
        outside [0, 1]."""
        version = self.get_model_version(model_id)
        if not version.has_threshold:
            raise InvalidTrainingOptionError("This model has no decision threshold to change.",
                                             hint="Only yes/no models trained with Flurry's thresholds have one; "
                                                  "retrain to get one.")
        if not 0.0 <= float(threshold) <= 1.0:
            raise InvalidTrainingOptionError(f"A threshold is a probability between 0 and 1 (got {threshold}).",
                                             hint="Pick one on the threshold chart, or type a value such as 0.5.")
        self._insert_threshold(model_id, threshold, how, detail or {}, now())
        return self.threshold(model_id)  # type: ignore[return-value]

    def threshold(self, model_id: str) -> DecisionThreshold | None:
        """The threshold in force for a binary version: the latest chosen, or the 0.5 rule ("legacy") for one
        trained before thresholds existed; None for other tasks. Raises ModelNotFoundError.
        (Read on every page rerun, so it reads the version's task, not its whole report.)"""
        found = self._query(f"SELECT task, created_at, report_json IS NULL AS legacy FROM {self.t('model_versions')} "
                            "WHERE model_id = ? AND status = 'READY'", [model_id])
        if found.empty:
            raise ModelNotFoundError(f"No model has the id {model_id!r}.",
                                     hint="Pick a model from the list, or train one first.")
        version = found.iloc[0]
        if version["task"] != "binary":
            return None
        frame = self._query(f"SELECT threshold, how, detail_json, chosen_at FROM {self.t('decision_thresholds')} "
                            "WHERE model_id = ? ORDER BY seq DESC LIMIT 1", [model_id])
        if frame.empty:  # trained before thresholds, or no validation predictions could be made
            return DecisionThreshold(DEFAULT_RULE, version["created_at"],
                                     "legacy" if bool(version["legacy"]) else "unvalidated", {})
        row = frame.iloc[0]
        return DecisionThreshold(float(row["threshold"]), row["chosen_at"], str(row["how"]),
                                 json.loads(row["detail_json"] or "{}"))

    # --- the model card's words ------------------------------------------------------------------
    def set_notes(self, model_id: str, intended_use: str, out_of_scope: str) -> None:
        """Save what the model is for and not for (the model card's text); the latest is shown."""
        self.get_model_version(model_id)
        self.wh.execute(f"INSERT INTO {self.t('model_notes')} (model_id, seq, intended_use, out_of_scope, written_at) "
                        "VALUES (?, ?, ?, ?, ?)", [model_id, next_event_seq(), intended_use, out_of_scope, now()])

    def notes(self, model_id: str) -> ModelNotes:
        frame = self._query(f"SELECT intended_use, out_of_scope, written_at FROM {self.t('model_notes')} "
                            "WHERE model_id = ? ORDER BY seq DESC LIMIT 1", [model_id])
        if frame.empty:
            return ModelNotes("", "", None)
        row = frame.iloc[0]
        return ModelNotes(str(row["intended_use"] or ""), str(row["out_of_scope"] or ""), row["written_at"])

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a finished run with its events, model version, artifacts and deployments, in one
        transaction; return the names of the SQL functions that were deployed from it."""
        version = self.model_for_run(run_id)
        functions = [d.function_name for d in self.list_deployments(version.model_id)] if version else []
        with self.wh.transaction():
            if version is not None:
                for table in ("deployments", "artifacts", "decision_thresholds", "model_notes", "stage_changes",
                              "model_versions"):
                    self.wh.execute(f"DELETE FROM {self.t(table)} WHERE model_id = ?", [version.model_id])
            self.wh.execute(f"DELETE FROM {self.t('run_events')} WHERE run_id = ?", [run_id])
            self.wh.execute(f"DELETE FROM {self.t('runs')} WHERE run_id = ?", [run_id])
        return functions

    # --- deployments -----------------------------------------------------------------------------
    def upsert_deployment(self, function_name: str, model_id: str) -> None:
        with self.wh.transaction():
            self.wh.execute(f"DELETE FROM {self.t('deployments')} WHERE function_name = ?", [function_name])
            self.wh.execute(
                f"INSERT INTO {self.t('deployments')} (function_name, model_id, created_at) VALUES (?, ?, ?)",
                [function_name, model_id, now()],
            )

    def record_scoring(self, function_name: str, table: TableRef, rows: int,
                       columns: tuple[str, str | None, str | None] = ("prediction", None, None)) -> None:
        """The latest scores: where, how many, and under which (prediction, probability, scored-at) columns."""
        self.wh.execute(
            f"UPDATE {self.t('deployments')} SET scored_schema = ?, scored_table = ?, scored_at = ?, scored_rows = ?, "
            f"prediction_column = ?, probability_column = ?, scored_at_column = ? WHERE function_name = ?",
            [table.schema, table.name, now(), rows, *columns, function_name],
        )

    def list_deployments(self, model_id: str | None = None) -> list[Deployment]:
        sql = f"SELECT * FROM {self.t('deployments')}"
        params: list[Any] = []
        if model_id is not None:
            sql += " WHERE model_id = ?"
            params.append(model_id)
        frame = self._query(sql + " ORDER BY created_at DESC", params)
        return [deployment_from_row(row) for _, row in frame.iterrows()]

    def function_deployments(self) -> list[Deployment]:
        """The deployments served by SQL functions: every one but forecasts (which write tables instead)."""
        forecasts = set(self._query(f"SELECT model_id FROM {self.t('model_versions')} WHERE task = ?",
                                    ["forecast"])["model_id"].astype(str))
        return [d for d in self.list_deployments() if d.model_id not in forecasts]

    # --- seeded demo tables ----------------------------------------------------------------------
    def seeded_tables(self) -> set[tuple[str, str]]:
        frame = self._query(f"SELECT table_schema, table_name FROM {self.t('seeded_tables')}")
        return {(r.table_schema, r.table_name) for r in frame.itertuples()}

    def record_seeded(self, table: TableRef, source: str) -> None:
        self.wh.execute(f"INSERT INTO {self.t('seeded_tables')} VALUES (?, ?, ?, ?)",
                        [table.schema, table.name, source, now()])
