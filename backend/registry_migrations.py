"""The numbered schema versions of Flurry's metadata tables (FLURRY), applied in order by Registry.migrate.

Only portable SQL, so every warehouse adapter can host them; every statement is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable


def migrations(t: Callable[[str], str], binary_type: str = "BLOB", timestamp_type: str = "TIMESTAMP",
               objects: list[str] | None = None) -> list[list[str]]:
    """Numbered schema versions; `t(name)` gives the fully qualified name of a metadata table, `binary_type` and
    `timestamp_type` the warehouse's types for bytes and for UTC times, `objects` the warehouse's own objects
    beside the tables (Warehouse.metadata_objects_sql)."""
    ts = timestamp_type
    return [
        [
            f"CREATE TABLE IF NOT EXISTS {t('schema_migrations')} (version INTEGER, applied_at {ts})",
            f"""CREATE TABLE IF NOT EXISTS {t('runs')} (
                run_id VARCHAR, state VARCHAR, source_schema VARCHAR, source_table VARCHAR, target VARCHAR,
                task VARCHAR, metric VARCHAR, time_budget INTEGER, config_json VARCHAR, created_at {ts},
                updated_at {ts}, worker_pid INTEGER, job_dir VARCHAR, message VARCHAR,
                rows_used BIGINT, rows_dropped BIGINT)""",
            f"""CREATE TABLE IF NOT EXISTS {t('run_events')} (
                run_id VARCHAR, seq INTEGER, event_at {ts}, kind VARCHAR, payload VARCHAR)""",
            f"""CREATE TABLE IF NOT EXISTS {t('model_versions')} (
                model_id VARCHAR, run_id VARCHAR, created_at {ts}, name VARCHAR, source_schema VARCHAR,
                source_table VARCHAR, target VARCHAR, task VARCHAR, metric VARCHAR, best_estimator VARCHAR,
                features_json VARCHAR, metrics_json VARCHAR, leaderboard_json VARCHAR, importance_json VARCHAR,
                versions_json VARCHAR, sha256 VARCHAR, status VARCHAR)""",
            f"""CREATE TABLE IF NOT EXISTS {t('artifacts')} (
                model_id VARCHAR, name VARCHAR, sha256 VARCHAR, size_bytes BIGINT, content {binary_type},
                created_at {ts})""",
            f"""CREATE TABLE IF NOT EXISTS {t('deployments')} (
                function_name VARCHAR, model_id VARCHAR, created_at {ts}, scored_schema VARCHAR,
                scored_table VARCHAR, scored_at {ts}, scored_rows BIGINT)""",
            f"""CREATE TABLE IF NOT EXISTS {t('seeded_tables')} (
                table_schema VARCHAR, table_name VARCHAR, source VARCHAR, created_at {ts})""",
        ],
        [  # 2: how many rows were eligible before sampling ("a 1,000,000-row sample of 48,000,000 rows")
            f"ALTER TABLE {t('runs')} ADD COLUMN IF NOT EXISTS rows_eligible BIGINT",
        ],
        [  # 3: artifacts in parts (Snowflake's BINARY holds 8 MB; a hosted app reads 32 MB per query at most)
            f"ALTER TABLE {t('artifacts')} ADD COLUMN IF NOT EXISTS part INTEGER",
        ],
        [  # 4: event numbers that two writers (the app and a training procedure) cannot both take (event_seq),
           # and the warehouse's own objects (Snowflake's stage) before anything is registered on them
            f"ALTER TABLE {t('run_events')} ADD COLUMN IF NOT EXISTS event_seq BIGINT",
            *(objects or []),
        ],
        [  # 5: the holdout report stored with each version; the decision threshold beside it (it may change:
           # every choice is a row, the latest in force)
            f"ALTER TABLE {t('model_versions')} ADD COLUMN IF NOT EXISTS report_json VARCHAR",
            f"""CREATE TABLE IF NOT EXISTS {t('decision_thresholds')} (
                model_id VARCHAR, seq BIGINT, threshold DOUBLE, how VARCHAR, detail_json VARCHAR, chosen_at {ts})""",
            f"""CREATE TABLE IF NOT EXISTS {t('model_notes')} (
                model_id VARCHAR, seq BIGINT, intended_use VARCHAR, out_of_scope VARCHAR, written_at {ts})""",
        ],
        [  # 6: named models holding numbered versions, and every change of a version's stage (candidate,
           # production, archived) with who made it and when; the latest change per version is its stage
            f"""CREATE TABLE IF NOT EXISTS {t('models')} (
                model_key VARCHAR, display_name VARCHAR, source_schema VARCHAR, source_table VARCHAR,
                target VARCHAR, task VARCHAR, created_at {ts})""",
            f"ALTER TABLE {t('model_versions')} ADD COLUMN IF NOT EXISTS model_key VARCHAR",
            f"ALTER TABLE {t('model_versions')} ADD COLUMN IF NOT EXISTS version_number INTEGER",
            f"""CREATE TABLE IF NOT EXISTS {t('stage_changes')} (
                model_key VARCHAR, model_id VARCHAR, seq BIGINT, stage VARCHAR, actor VARCHAR, note VARCHAR,
                changed_at {ts})""",
        ],
        [  # 7: batch scorings as jobs (progress, stop, their outcome) and the schedules that request them
            f"""CREATE TABLE IF NOT EXISTS {t('scoring_runs')} (
                scoring_id VARCHAR, function_name VARCHAR, source_schema VARCHAR, source_table VARCHAR,
                output_schema VARCHAR, output_table VARCHAR, mode VARCHAR, state VARCHAR, rows_done BIGINT,
                rows_total BIGINT, requested_at {ts}, started_at {ts}, finished_at {ts}, message VARCHAR,
                stop_requested BOOLEAN, schedule_id VARCHAR, model_id VARCHAR)""",
            f"""CREATE TABLE IF NOT EXISTS {t('schedules')} (
                schedule_id VARCHAR, function_name VARCHAR, source_schema VARCHAR, source_table VARCHAR,
                output_schema VARCHAR, output_table VARCHAR, mode VARCHAR, cron VARCHAR, every_seconds INTEGER,
                enabled BOOLEAN, created_at {ts}, created_by VARCHAR, last_fired_at {ts})""",
        ],
        [  # 8: each version's monitoring baseline, the drift found after each batch score, and where a model's
           # actual outcomes arrive (the latest row per model is in force)
            f"ALTER TABLE {t('model_versions')} ADD COLUMN IF NOT EXISTS baseline_json VARCHAR",
            f"""CREATE TABLE IF NOT EXISTS {t('drift_reports')} (
                scoring_id VARCHAR, model_id VARCHAR, computed_at {ts}, scored_schema VARCHAR, scored_table VARCHAR,
                report_json VARCHAR)""",
            f"""CREATE TABLE IF NOT EXISTS {t('outcome_sources')} (
                model_key VARCHAR, seq BIGINT, source_schema VARCHAR, source_table VARCHAR, key_column VARCHAR,
                outcome_column VARCHAR, set_at {ts})""",
        ],
        [  # 9: the column names a deployment's latest scores were written under (they avoid the table's own)
            f"ALTER TABLE {t('deployments')} ADD COLUMN IF NOT EXISTS prediction_column VARCHAR",
            f"ALTER TABLE {t('deployments')} ADD COLUMN IF NOT EXISTS probability_column VARCHAR",
            f"ALTER TABLE {t('deployments')} ADD COLUMN IF NOT EXISTS scored_at_column VARCHAR",
        ],
        [  # 10: when a version of the model was last numbered: the write that makes numbering one at a time
            f"ALTER TABLE {t('models')} ADD COLUMN IF NOT EXISTS numbered_at {ts}",
        ],
    ]
