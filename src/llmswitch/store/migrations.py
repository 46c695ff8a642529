"""The schema's history: ordered, versioned migrations, one list per backend.

A database records what it has applied in ``llmswitch_schema_version``; ``migrate()`` applies the
versions above its highest, each with its row, under a lock (PostgreSQL: an advisory lock; SQLite:
the database write lock), so gateways starting together migrate once.

To change the schema, append a ``Migration`` to *both* lists with the next version; never edit one
that has shipped, since databases that already applied it will not run it again. Version 2 added
spend logs (unique by request id, so replaying the spend journal is idempotent); version 3 users and
teams ("subjects", with their own change counter and tombstones); version 4 cheaper spend-log indexes
(every index is written on every answered request); version 5 exact money (PostgreSQL's spend and
budget columns become NUMERIC; SQLite sums in decimal through functions of its own, its REAL columns
unchanged) and the index the budget period resets read; version 6 two spend-log columns: the kind of
call (``call_type``) and whether the gateway estimated the record's tokens (``estimated``); version 7
the live gateway instances; version 8 a key's model aliases (LiteLLM's ``aliases``); version 9 a key's
``tags``; version 10 its ``soft_budget``; version 11 its per-model limits and budgets; version 12 what a
cache hit saved (``cache_saved_cost`` of the spend logs); version 13 the Responses API's stored responses;
version 14 batch jobs (files, batches and batch lines, see ``batch_records``); version 15 a team's members
and their roles (``members_with_roles``).

How PostgreSQL runs them (see ``postgres_migrate``): on a connection without timeouts, and a
migration made only of ``CREATE INDEX`` / ``DROP INDEX`` statements concurrently, outside a transaction,
so the table stays writable. An index on a table that may be large belongs in a migration of its own.

All tables are prefixed ``llmswitch_`` so the store can share a database (or schema) with other
applications, LiteLLM's own tables included.
"""

from __future__ import annotations

from typing import NamedTuple

from llmswitch.store.errors import StoreMigrationError


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


VERSION_TABLE = "llmswitch_schema_version"

SQLITE_VERSION_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

POSTGRES_VERSION_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""

# one row per answered request; the spend journal's shipper writes them (see llmswitch.spend)
_SPEND_INDEXES = (
    # (column, time) serves both "this key's logs, newest first" and per-key daily sums
    "CREATE INDEX llmswitch_spend_logs_time ON llmswitch_spend_logs (time)",
    "CREATE INDEX llmswitch_spend_logs_key_hash ON llmswitch_spend_logs (key_hash, time)",
    "CREATE INDEX llmswitch_spend_logs_user_id ON llmswitch_spend_logs (user_id, time)",
    "CREATE INDEX llmswitch_spend_logs_team_id ON llmswitch_spend_logs (team_id, time)",
    "CREATE INDEX llmswitch_spend_logs_model_group ON llmswitch_spend_logs (model_group, time)",
)


# migration 4: each index of the spend logs is one more B-tree written per answered request. Most
# requests have no user or team, so those two indexes only hold rows that have one (a partial index
# serves ``user_id = ?`` all the same, in SQLite and PostgreSQL alike); and nothing looks rows up by
# model group (daily totals by model group read a time range, through the time index).
_LEANER_SPEND_INDEXES = (
    "DROP INDEX llmswitch_spend_logs_model_group",
    "DROP INDEX llmswitch_spend_logs_user_id",
    "CREATE INDEX llmswitch_spend_logs_user_id ON llmswitch_spend_logs (user_id, time) WHERE user_id IS NOT NULL",
    "DROP INDEX llmswitch_spend_logs_team_id",
    "CREATE INDEX llmswitch_spend_logs_team_id ON llmswitch_spend_logs (team_id, time) WHERE team_id IS NOT NULL",
)


def _batches_ddl(integer: str, real: str, blob: str) -> tuple[str, ...]:
    # migration "batches": once released, never change what this returns (see the module docstring).
    # Times are unix seconds (OpenAI's objects carry them so); a line's lease is a float of seconds.
    return (
        f"""CREATE TABLE llmswitch_files (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                purpose TEXT NOT NULL,
                filename TEXT NOT NULL,
                bytes {integer} NOT NULL,
                created_at {integer} NOT NULL,
                expires_at {integer},
                storage TEXT NOT NULL,
                content {blob}
            )""",
        "CREATE INDEX llmswitch_files_owner ON llmswitch_files (owner, created_at)",
        f"""CREATE TABLE llmswitch_batches (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                api TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                model_group TEXT NOT NULL,
                input_file_id TEXT NOT NULL,
                completion_window TEXT NOT NULL,
                status TEXT NOT NULL,
                mode TEXT NOT NULL,
                created_at {integer} NOT NULL,
                expires_at {integer} NOT NULL,
                in_progress_at {integer},
                finalizing_at {integer},
                completed_at {integer},
                failed_at {integer},
                expired_at {integer},
                cancelling_at {integer},
                cancelled_at {integer},
                output_file_id TEXT,
                error_file_id TEXT,
                total {integer} NOT NULL DEFAULT 0,
                completed {integer} NOT NULL DEFAULT 0,
                failed {integer} NOT NULL DEFAULT 0,
                errors TEXT,
                metadata TEXT,
                native TEXT,
                usage TEXT,
                estimate {real} NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until {real}
            )""",
        "CREATE INDEX llmswitch_batches_owner ON llmswitch_batches (owner, created_at)",
        "CREATE INDEX llmswitch_batches_status ON llmswitch_batches (status)",
        f"""CREATE TABLE llmswitch_batch_lines (
                batch_id TEXT NOT NULL,
                line_no {integer} NOT NULL,
                custom_id TEXT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending',
                lease_owner TEXT,
                lease_until {real},
                attempts {integer} NOT NULL DEFAULT 0,
                status_code {integer},
                response TEXT,
                failed {integer},
                PRIMARY KEY (batch_id, line_no)
            )""",
        "CREATE INDEX llmswitch_batch_lines_state ON llmswitch_batch_lines (batch_id, state, line_no)",
    )


def _spend_kind_columns(boolean: str, false: str) -> tuple[str, ...]:
    # migration 5 ("spend_call_type_and_estimated"): once released, never change what this returns.
    # A constant default makes each ADD COLUMN a change of the catalogue only, however big the table.
    return (
        "ALTER TABLE llmswitch_spend_logs ADD COLUMN call_type TEXT NOT NULL DEFAULT 'chat'",
        f"ALTER TABLE llmswitch_spend_logs ADD COLUMN estimated {boolean} NOT NULL DEFAULT {false}",
    )


def _spend_logs_ddl(time: str, integer: str, real: str, boolean: str, json: str) -> str:
    # part of migration 2: once released, never change what this returns (see the module docstring)
    return f"""CREATE TABLE llmswitch_spend_logs (
                request_id TEXT PRIMARY KEY,
                time {time} NOT NULL,
                key_hash TEXT,
                key_alias TEXT,
                user_id TEXT,
                team_id TEXT,
                model_group TEXT,
                deployment_id TEXT,
                provider TEXT,
                model TEXT,
                input_tokens {integer} NOT NULL DEFAULT 0,
                output_tokens {integer} NOT NULL DEFAULT 0,
                cache_read_tokens {integer} NOT NULL DEFAULT 0,
                cache_write_tokens {integer} NOT NULL DEFAULT 0,
                reasoning_tokens {integer} NOT NULL DEFAULT 0,
                cost {real},
                latency_ms {real},
                ttft_ms {real},
                status {integer} NOT NULL,
                error_class TEXT,
                cache_hit {boolean} NOT NULL,
                stream {boolean} NOT NULL,
                metadata {json} NOT NULL DEFAULT '{{}}'
            )"""


def _subjects_ddl(time: str, integer: str, real: str, boolean: str, json: str, models: str) -> tuple[str, ...]:
    # migration 3: once released, never change what this returns (see the module docstring)
    return (
        # users and teams change on their own sequence, so a key refresher never reads subject changes
        "INSERT INTO llmswitch_change_counters (name, value) VALUES ('subjects', 0)",
        f"""CREATE TABLE llmswitch_subjects (
                kind TEXT NOT NULL CHECK (kind IN ('user', 'team')),
                id TEXT NOT NULL,
                alias TEXT,
                models {models},
                max_budget {real},
                budget_duration TEXT,
                budget_reset_at {time},
                rpm_limit {integer},
                tpm_limit {integer},
                max_parallel_requests {integer},
                metadata {json} NOT NULL DEFAULT '{{}}',
                blocked {boolean} NOT NULL,
                spend {real} NOT NULL DEFAULT 0,
                created_at {time} NOT NULL,
                updated_at {time} NOT NULL,
                change_seq {integer} NOT NULL,
                PRIMARY KEY (kind, id)
            )""",
        "CREATE INDEX llmswitch_subjects_change_seq ON llmswitch_subjects (change_seq)",
        # list_subjects pages one kind, oldest first
        "CREATE INDEX llmswitch_subjects_created ON llmswitch_subjects (kind, created_at, id)",
        f"""CREATE TABLE llmswitch_subject_tombstones (
                kind TEXT NOT NULL,
                id TEXT NOT NULL,
                change_seq {integer} NOT NULL,
                deleted_at {time} NOT NULL,
                PRIMARY KEY (kind, id)
            )""",
        "CREATE INDEX llmswitch_subject_tombstones_change_seq ON llmswitch_subject_tombstones (change_seq)",
    )


# migration 5: the budget period reset (store/budget_periods.py) looks for budgets whose period ended,
# every few seconds on every gateway: only budgets with a duration can be due, so only they are indexed
_BUDGET_RESET_INDEXES = (
    "CREATE INDEX llmswitch_keys_budget_reset_at ON llmswitch_keys (budget_reset_at) WHERE budget_duration IS NOT NULL",
    "CREATE INDEX llmswitch_subjects_budget_reset_at ON llmswitch_subjects (budget_reset_at) "
    "WHERE budget_duration IS NOT NULL",
)
# and money in NUMERIC, exact: a double's value converts to the decimal of its 15 significant digits,
# which also heals the drift float additions left (0.049999999999999996 becomes 0.05). The spend logs'
# cost keeps its type: rewriting the largest table under an exclusive lock is not worth it when each
# row's double already holds its decimal, and every sum is taken as SUM(cost::numeric).
_NUMERIC_MONEY = (
    "ALTER TABLE llmswitch_keys ALTER COLUMN spend TYPE NUMERIC USING spend::numeric, "
    "ALTER COLUMN max_budget TYPE NUMERIC USING max_budget::numeric",
    "ALTER TABLE llmswitch_subjects ALTER COLUMN spend TYPE NUMERIC USING spend::numeric, "
    "ALTER COLUMN max_budget TYPE NUMERIC USING max_budget::numeric",
)


def _instances_ddl(time: str, integer: str) -> tuple[str, ...]:
    # the gateway processes using this store, each beating every few seconds (see store/instances.py)
    return (
        f"""CREATE TABLE llmswitch_instances (
                instance_id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid {integer} NOT NULL,
                limits TEXT NOT NULL,
                started_at {time} NOT NULL,
                last_seen {time} NOT NULL
            )""",
    )


def _responses_ddl(time: str) -> tuple[str, ...]:
    # the Responses API's stored responses, shared by every worker and instance (see store/responses.py)
    return (
        f"""CREATE TABLE llmswitch_responses (
                response_id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                input TEXT NOT NULL,
                response TEXT NOT NULL,
                created_at {time} NOT NULL,
                expires_at {time} NOT NULL
            )""",
        "CREATE INDEX llmswitch_responses_expires_at ON llmswitch_responses (expires_at)",
    )


def _model_limit_columns(json_type: str) -> tuple[str, ...]:
    # a key's per-model rpm, tpm and budgets (LiteLLM's model_rpm_limit, model_tpm_limit, model_max_budget)
    return tuple(
        f"ALTER TABLE llmswitch_keys ADD COLUMN {name} {json_type} NOT NULL DEFAULT '{{}}'"
        for name in ("model_rpm_limit", "model_tpm_limit", "model_max_budget")
    )


# a team's members and their roles (LiteLLM's members_with_roles); a team admin's key is scoped by it
_TEAM_MEMBERS = "ALTER TABLE llmswitch_subjects ADD COLUMN members_with_roles {json} NOT NULL DEFAULT '[]'"


# SQLite stores datetimes as fixed-width ISO-8601 UTC text (sorts like time), JSON as text, bools as 0/1.
SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "keys",
        (
            # one row per change stream; writers bump it in their transaction (see store/base.py)
            """CREATE TABLE llmswitch_change_counters (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            )""",
            "INSERT INTO llmswitch_change_counters (name, value) VALUES ('keys', 0)",
            """CREATE TABLE llmswitch_keys (
                token_hash TEXT PRIMARY KEY,
                key_name TEXT,
                key_alias TEXT,
                models TEXT NOT NULL DEFAULT '[]',
                max_budget REAL,
                budget_duration TEXT,
                budget_reset_at TEXT,
                rpm_limit INTEGER,
                tpm_limit INTEGER,
                max_parallel_requests INTEGER,
                user_id TEXT,
                team_id TEXT,
                metadata TEXT NOT NULL DEFAULT '{}',
                expires TEXT,
                blocked INTEGER NOT NULL DEFAULT 0,
                spend REAL NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                change_seq INTEGER NOT NULL
            )""",
            "CREATE INDEX llmswitch_keys_change_seq ON llmswitch_keys (change_seq)",
            "CREATE INDEX llmswitch_keys_user_id ON llmswitch_keys (user_id)",
            "CREATE INDEX llmswitch_keys_team_id ON llmswitch_keys (team_id)",
            """CREATE TABLE llmswitch_key_tombstones (
                token_hash TEXT PRIMARY KEY,
                change_seq INTEGER NOT NULL,
                deleted_at TEXT NOT NULL
            )""",
            "CREATE INDEX llmswitch_key_tombstones_change_seq ON llmswitch_key_tombstones (change_seq)",
        ),
    ),
    Migration(2, "spend_logs", (_spend_logs_ddl("TEXT", "INTEGER", "REAL", "INTEGER", "TEXT"), *_SPEND_INDEXES)),
    Migration(3, "subjects", _subjects_ddl("TEXT", "INTEGER", "REAL", "INTEGER", "TEXT", "TEXT NOT NULL DEFAULT '[]'")),
    Migration(4, "leaner_spend_indexes", _LEANER_SPEND_INDEXES),
    Migration(5, "exact_money_and_budget_resets", _BUDGET_RESET_INDEXES),
    Migration(6, "spend_call_type_and_estimated", _spend_kind_columns("INTEGER", "0")),
    Migration(7, "instances", _instances_ddl("TEXT", "INTEGER")),
    Migration(8, "key_model_aliases", ("ALTER TABLE llmswitch_keys ADD COLUMN aliases TEXT NOT NULL DEFAULT '{}'",)),
    Migration(9, "key_tags", ("ALTER TABLE llmswitch_keys ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",)),
    Migration(10, "key_soft_budget", ("ALTER TABLE llmswitch_keys ADD COLUMN soft_budget REAL",)),
    Migration(11, "key_model_limits", _model_limit_columns("TEXT")),
    Migration(12, "spend_cache_saved_cost", ("ALTER TABLE llmswitch_spend_logs ADD COLUMN cache_saved_cost REAL",)),
    Migration(13, "stored_responses", _responses_ddl("TEXT")),
    Migration(14, "batches", _batches_ddl("INTEGER", "REAL", "BLOB")),
    Migration(15, "team_members", (_TEAM_MEMBERS.format(json="TEXT"),)),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "keys",
        (
            """CREATE TABLE llmswitch_change_counters (
                name TEXT PRIMARY KEY,
                value BIGINT NOT NULL
            )""",
            "INSERT INTO llmswitch_change_counters (name, value) VALUES ('keys', 0)",
            """CREATE TABLE llmswitch_keys (
                token_hash TEXT PRIMARY KEY,
                key_name TEXT,
                key_alias TEXT,
                models TEXT[] NOT NULL DEFAULT '{}',
                max_budget DOUBLE PRECISION,
                budget_duration TEXT,
                budget_reset_at TIMESTAMPTZ,
                rpm_limit BIGINT,
                tpm_limit BIGINT,
                max_parallel_requests BIGINT,
                user_id TEXT,
                team_id TEXT,
                metadata JSONB NOT NULL DEFAULT '{}',
                expires TIMESTAMPTZ,
                blocked BOOLEAN NOT NULL DEFAULT FALSE,
                spend DOUBLE PRECISION NOT NULL DEFAULT 0,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                change_seq BIGINT NOT NULL
            )""",
            "CREATE INDEX llmswitch_keys_change_seq ON llmswitch_keys (change_seq)",
            "CREATE INDEX llmswitch_keys_user_id ON llmswitch_keys (user_id)",
            "CREATE INDEX llmswitch_keys_team_id ON llmswitch_keys (team_id)",
            """CREATE TABLE llmswitch_key_tombstones (
                token_hash TEXT PRIMARY KEY,
                change_seq BIGINT NOT NULL,
                deleted_at TIMESTAMPTZ NOT NULL
            )""",
            "CREATE INDEX llmswitch_key_tombstones_change_seq ON llmswitch_key_tombstones (change_seq)",
        ),
    ),
    Migration(
        2,
        "spend_logs",
        (_spend_logs_ddl("TIMESTAMPTZ", "BIGINT", "DOUBLE PRECISION", "BOOLEAN", "JSONB"), *_SPEND_INDEXES),
    ),
    Migration(
        3,
        "subjects",
        _subjects_ddl("TIMESTAMPTZ", "BIGINT", "DOUBLE PRECISION", "BOOLEAN", "JSONB", "TEXT[] NOT NULL DEFAULT '{}'"),
    ),
    Migration(4, "leaner_spend_indexes", _LEANER_SPEND_INDEXES),
    Migration(5, "exact_money_and_budget_resets", (*_NUMERIC_MONEY, *_BUDGET_RESET_INDEXES)),
    Migration(6, "spend_call_type_and_estimated", _spend_kind_columns("BOOLEAN", "FALSE")),
    Migration(7, "instances", _instances_ddl("TIMESTAMPTZ", "BIGINT")),
    Migration(8, "key_model_aliases", ("ALTER TABLE llmswitch_keys ADD COLUMN aliases JSONB NOT NULL DEFAULT '{}'",)),
    Migration(9, "key_tags", ("ALTER TABLE llmswitch_keys ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}'",)),
    Migration(10, "key_soft_budget", ("ALTER TABLE llmswitch_keys ADD COLUMN soft_budget NUMERIC",)),
    Migration(11, "key_model_limits", _model_limit_columns("JSONB")),
    Migration(
        12,
        "spend_cache_saved_cost",
        ("ALTER TABLE llmswitch_spend_logs ADD COLUMN cache_saved_cost DOUBLE PRECISION",),
    ),
    Migration(13, "stored_responses", _responses_ddl("TIMESTAMPTZ")),
    Migration(14, "batches", _batches_ddl("BIGINT", "DOUBLE PRECISION", "BYTEA")),
    Migration(15, "team_members", (_TEAM_MEMBERS.format(json="JSONB"),)),
)


def pending(migrations: tuple[Migration, ...], applied: int) -> list[Migration]:
    """The migrations above version ``applied``, in order; refuses a database newer than the code."""
    latest = migrations[-1].version
    if applied > latest:
        raise StoreMigrationError(
            f"the database schema is at version {applied}, newer than this llmswitch knows ({latest}); "
            "upgrade llmswitch, or point it at another database"
        )
    return [m for m in migrations if m.version > applied]
