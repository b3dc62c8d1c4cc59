"""Named models and their versions: "churn risk" holds v1, v2, v3…, each a trained model version with a
stage — candidate, production or archived.

A model is what a table and a target make: every run on the same table and target adds a candidate version
to the same model. Stages are an append-only history (`stage_changes`): the latest change per version is its
stage, and the history says who promoted what, when. At most one version of a model is in production.
"""

from __future__ import annotations

import enum
import getpass
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.errors import DeploymentError, ModelNotFoundError, WarehouseQueryError
from backend.identifiers import table_target_slug
from backend.registry import ModelVersion, Registry, next_event_seq, now
from backend.task_detection import Task
from backend.warehouse.base import TableRef

FUNCTION_PREFIX = "flurry_predict_"
KEY_PART_LENGTH = 20
_numbering = threading.Lock()  # version numbers are given out one at a time within a process
# A numbering transaction that collided with another process's is tried again; the offline Snowflake reports
# a collision as a generic server error, so any refusal is retried this many times before it is shown.
NUMBERING_ATTEMPTS = 3


class Stage(enum.StrEnum):
    CANDIDATE = "candidate"
    PRODUCTION = "production"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class NamedModel:
    key: str  # stable, SQL-safe: the model's functions are named after it
    name: str  # what people call it ("churn risk"); may be changed
    table: TableRef
    target: str
    task: Task
    created_at: datetime

    @property
    def function_name(self) -> str:
        """The SQL function that always serves the production version."""
        return f"{FUNCTION_PREFIX}{self.key}"

    def version_function(self, number: int) -> str:
        """The SQL function of one version, callable whatever its stage."""
        return f"{FUNCTION_PREFIX}{self.key}_v{number}"


@dataclass(frozen=True)
class CatalogVersion:
    model_key: str
    number: int
    model_id: str
    stage: Stage
    created_at: datetime

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class StageChange:
    model_key: str
    model_id: str
    number: int
    stage: Stage
    actor: str
    note: str
    changed_at: datetime


def current_actor() -> str:
    """Who is making a change: the operating-system user running the app (the embedded warehouse has no users
    of its own)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Catalog:
    """Models, version numbers and stages, kept in Flurry's metadata tables beside the registry's."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _query(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.registry._query(sql, params)

    def _t(self, name: str) -> str:
        return self.registry.t(name)

    # --- models --------------------------------------------------------------------------------
    def models(self) -> list[NamedModel]:
        frame = self._query(f"SELECT * FROM {self._t('models')} ORDER BY created_at DESC")
        return [_model_from_row(row) for _, row in frame.iterrows()]

    def model(self, key: str) -> NamedModel:
        """Raises ModelNotFoundError."""
        frame = self._query(f"SELECT * FROM {self._t('models')} WHERE model_key = ?", [key])
        if frame.empty:
            raise ModelNotFoundError(f"No model is called {key!r}.", hint="Pick a model from the list.")
        return _model_from_row(frame.iloc[0])

    def model_of(self, model_id: str) -> NamedModel:
        """The named model a version belongs to (assigning one first for a version trained before models
        existed). Raises ModelNotFoundError for an unknown version."""
        version = self.registry.get_model_version(model_id)
        key, _ = self._key_and_number(model_id)
        if key is None:
            key = self.assign(version)[0]
        return self.model(key)

    def rename(self, key: str, name: str) -> None:
        cleaned = " ".join(name.split())[:80]
        if not cleaned:
            raise DeploymentError("A model needs a name.", hint="Type a few words, e.g. 'churn risk'.")
        self.model(key)
        self.registry.wh.execute(f"UPDATE {self._t('models')} SET display_name = ? WHERE model_key = ?", [cleaned, key])

    def _find_or_create(self, table: TableRef, target: str, task: Task) -> str:
        frame = self._query(f"SELECT model_key FROM {self._t('models')} WHERE source_schema = ? AND source_table = ? "
                            "AND target = ?", [table.schema, table.name, target])
        if not frame.empty:
            return str(frame["model_key"].iloc[0])
        base = table_target_slug(table.name, target, max_part=KEY_PART_LENGTH)
        taken = set(self._query(f"SELECT model_key FROM {self._t('models')}")["model_key"].astype(str))
        key, n = base, 2
        while key in taken:  # the same table name in another schema, or names that slug alike
            key, n = f"{base}_{n}", n + 1
        self.registry.wh.execute(f"INSERT INTO {self._t('models')} (model_key, display_name, source_schema, "
                                 "source_table, target, task, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [key, f"{target} from {table.name}", table.schema, table.name, target, task.value, now()])
        return key

    # --- versions ------------------------------------------------------------------------------
    def assign(self, version: ModelVersion) -> tuple[str, int]:
        """Put a new version into its model (made on first use) with the next number, as a candidate; return
        (model key, number). Idempotent: a version already assigned keeps its place."""
        with _numbering:
            for attempt in range(NUMBERING_ATTEMPTS):
                key, number = self._key_and_number(version.model_id)
                if key is not None and number is not None:
                    return key, number
                key = self._find_or_create(version.table, version.target, version.task)
                try:
                    return key, self._number(key, version)
                except WarehouseQueryError:
                    if attempt == NUMBERING_ATTEMPTS - 1:
                        raise
                    time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
            raise AssertionError("unreachable")  # the loop returns or raises

    def _number(self, key: str, version: ModelVersion) -> int:
        """Give `version` its model's next number, with its "trained" entry, in one transaction."""
        with self.registry.wh.transaction():  # a number without its "trained" entry would never get one
            # The model's own row is written first. Snowflake holds a write's lock until its transaction ends,
            # so another process numbering a version of this model (each training procedure records its own
            # version, beside the app: beyond this process's lock) waits here and then reads the number given
            # now. An engine with optimistic transactions (DuckDB, as the offline tests' Snowflake runs on)
            # refuses the second write instead; that transaction is rolled back whole and tried again.
            self.registry.wh.execute(f"UPDATE {self._t('models')} SET numbered_at = ? WHERE model_key = ?",
                                     [now(), key])
            frame = self._query(f"SELECT coalesce(max(version_number), 0) AS n FROM {self._t('model_versions')} "
                                "WHERE model_key = ?", [key])
            number = int(frame["n"].iloc[0]) + 1
            self.registry.wh.execute(f"UPDATE {self._t('model_versions')} SET model_key = ?, version_number = ? "
                                     "WHERE model_id = ?", [key, number, version.model_id])
            self._record(key, version.model_id, Stage.CANDIDATE, "system", "trained", version.created_at)
        return number

    def _key_and_number(self, model_id: str) -> tuple[str | None, int | None]:
        frame = self._query(f"SELECT model_key, version_number FROM {self._t('model_versions')} WHERE model_id = ?",
                            [model_id])
        if frame.empty or frame["model_key"].isna().iloc[0]:
            return None, None
        return str(frame["model_key"].iloc[0]), int(frame["version_number"].iloc[0])

    def versions(self, key: str) -> list[CatalogVersion]:
        """The model's versions, newest first, each with its stage now."""
        frame = self._query(
            f"SELECT v.model_id, v.version_number, v.created_at, s.stage FROM {self._t('model_versions')} v "
            f"LEFT JOIN (SELECT model_id, stage, row_number() OVER (PARTITION BY model_id ORDER BY seq DESC) AS r "
            f"FROM {self._t('stage_changes')}) s ON s.model_id = v.model_id AND s.r = 1 "
            "WHERE v.model_key = ? AND v.status = 'READY' ORDER BY v.version_number DESC", [key])
        return [CatalogVersion(key, int(r.version_number), str(r.model_id),
                               Stage(r.stage) if isinstance(r.stage, str) else Stage.CANDIDATE, r.created_at)
                for r in frame.itertuples()]

    def version(self, model_id: str) -> CatalogVersion:
        key = self.model_of(model_id).key
        return next(v for v in self.versions(key) if v.model_id == model_id)

    def production(self, key: str) -> CatalogVersion | None:
        return next((v for v in self.versions(key) if v.stage is Stage.PRODUCTION), None)

    # --- stages --------------------------------------------------------------------------------
    def history(self, key: str) -> list[StageChange]:
        """Every stage change of the model's versions, newest first."""
        frame = self._query(
            f"SELECT s.*, v.version_number FROM {self._t('stage_changes')} s JOIN {self._t('model_versions')} v "
            "ON v.model_id = s.model_id WHERE s.model_key = ? ORDER BY s.seq DESC", [key])
        return [StageChange(str(r.model_key), str(r.model_id), int(r.version_number), Stage(r.stage), str(r.actor),
                            str(r.note or ""), r.changed_at) for r in frame.itertuples()]

    def previous_production(self, key: str) -> CatalogVersion | None:
        """The version that was in production before the one now (what a rollback returns to), if it is still
        there."""
        current = self.production(key)
        by_id = {v.model_id: v for v in self.versions(key)}
        for change in self.history(key):
            if change.stage is Stage.PRODUCTION and (current is None or change.model_id != current.model_id):
                return by_id.get(change.model_id)
        return None

    def record_promotion(self, key: str, model_id: str, actor: str, note: str) -> None:
        """`model_id` is now production; the version that was is archived (one transaction)."""
        current = self.production(key)
        with self.registry.wh.transaction():
            if current is not None and current.model_id != model_id:
                self._record(key, current.model_id, Stage.ARCHIVED, actor, f"replaced by {note}".strip())
            self._record(key, model_id, Stage.PRODUCTION, actor, note)

    def archive(self, model_id: str, actor: str) -> None:
        """Retire a version that is not in production. Raises DeploymentError for the production version."""
        version = self.version(model_id)
        if version.stage is Stage.PRODUCTION:
            raise DeploymentError(f"{version.label} is in production.",
                                  hint="Promote another version (or roll back) first, then archive this one.")
        self._record(version.model_key, model_id, Stage.ARCHIVED, actor, "archived")

    def _record(self, key: str, model_id: str, stage: Stage, actor: str, note: str, at: datetime | None = None) -> None:
        self.registry.wh.execute(f"INSERT INTO {self._t('stage_changes')} VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [key, model_id, next_event_seq(), stage.value, actor, note, at or now()])

    def backfill(self) -> int:
        """Give every version trained before models existed its model and number, oldest first; a version whose
        deployment is already its model's production function is recorded in production. Returns how many."""
        frame = self._query(f"SELECT model_id FROM {self._t('model_versions')} WHERE model_key IS NULL "
                            "AND status = 'READY' ORDER BY created_at")
        for model_id in frame["model_id"]:
            version = self.registry.get_model_version(str(model_id))
            key, _ = self.assign(version)
            functions = {d.function_name for d in self.registry.list_deployments(version.model_id)}
            if self.model(key).function_name in functions:
                self.record_promotion(key, version.model_id, "system", "deployed before versions existed")
        return len(frame)


def _model_from_row(row: Any) -> NamedModel:
    return NamedModel(str(row["model_key"]), str(row["display_name"]), TableRef(row["source_schema"], row["source_table"]),
                      str(row["target"]), Task(str(row["task"])), row["created_at"])
