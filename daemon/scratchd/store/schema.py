"""The state database schema and its migrations.

``PRAGMA user_version`` holds the schema version. Migrations are append-only:
a released step is never edited, a change is a new step. They run inside one
``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh database at
once cannot both apply them, and a crash mid-migration leaves the old schema.
"""

from __future__ import annotations

import sqlite3

from scratchd.errors import StoreError

STATUSES = "'queued','running','passed','failed','error','cancelled','interrupted'"

MIGRATIONS: tuple[str, ...] = (
    # 1: builds (the queue is the set of queued rows), last-seen refs, daemon heartbeat.
    f"""
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo TEXT NOT NULL,
        ref TEXT NOT NULL,
        branch TEXT NOT NULL,
        sha TEXT NOT NULL,
        trigger TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({STATUSES})),
        attempt INTEGER NOT NULL DEFAULT 1,
        interruptions INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        retry_after REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        failed_step TEXT,
        message TEXT,
        images TEXT NOT NULL DEFAULT '[]',
        log_path TEXT,
        work_dir TEXT
    );
    CREATE INDEX builds_by_status ON builds (status, repo, ref, id);
    CREATE INDEX builds_by_repo ON builds (repo, id);
    CREATE TABLE refs (
        repo TEXT NOT NULL,
        ref TEXT NOT NULL,
        sha TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (repo, ref)
    );
    CREATE TABLE daemon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status TEXT NOT NULL,
        repos TEXT NOT NULL DEFAULT '[]',
        config_path TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: the notification outbox. Events are written in the transaction that changes a
    # build's status; deliveries (one per event and sink) are made by the sender, which
    # records each success before it sends anything else (exactly once per sink).
    # No foreign key to builds: pruning a build must not lose its undelivered events.
    """
    CREATE TABLE notify_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        build_id INTEGER NOT NULL,
        repo TEXT NOT NULL,
        created_at REAL NOT NULL,
        build TEXT NOT NULL,
        previous TEXT,
        routed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX notify_events_unrouted ON notify_events (routed, id);
    CREATE TABLE notify_deliveries (
        event INTEGER NOT NULL REFERENCES notify_events (id) ON DELETE CASCADE,
        sink TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        delivered_at REAL,
        gave_up_at REAL,
        last_error TEXT,
        PRIMARY KEY (event, sink)
    );
    CREATE INDEX notify_deliveries_due ON notify_deliveries (delivered_at, gave_up_at, next_at);
    """,
    # 3: what the web page and /metrics show beyond the build row. build_events is filled by
    # triggers (no daemon code): the change feed's resumable sequence, bounded to the newest
    # 10,000 events. The commit facts, ref-seen time and push figures are written by the daemon.
    """
    ALTER TABLE builds ADD COLUMN commit_subject TEXT;
    ALTER TABLE builds ADD COLUMN commit_author TEXT;
    ALTER TABLE builds ADD COLUMN executor TEXT;
    ALTER TABLE builds ADD COLUMN seen_at REAL;
    CREATE TABLE build_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        build_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE TRIGGER build_events_insert AFTER INSERT ON builds BEGIN
        INSERT INTO build_events (build_id, status, at)
        VALUES (new.id, new.status, (julianday('now') - 2440587.5) * 86400.0);
        DELETE FROM build_events WHERE seq <= last_insert_rowid() - 10000;
    END;
    CREATE TRIGGER build_events_update AFTER UPDATE OF status ON builds
    WHEN old.status IS NOT new.status BEGIN
        INSERT INTO build_events (build_id, status, at)
        VALUES (new.id, new.status, (julianday('now') - 2440587.5) * 86400.0);
        DELETE FROM build_events WHERE seq <= last_insert_rowid() - 10000;
    END;
    CREATE TABLE pushes (
        build_id INTEGER NOT NULL,
        registry TEXT NOT NULL,
        seconds REAL NOT NULL,
        uploaded_blobs INTEGER NOT NULL DEFAULT 0,
        uploaded_bytes INTEGER NOT NULL DEFAULT 0,
        existed_blobs INTEGER NOT NULL DEFAULT 0,
        existed_bytes INTEGER NOT NULL DEFAULT 0,
        mounted_blobs INTEGER NOT NULL DEFAULT 0,
        mounted_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pushes_by_build ON pushes (build_id);
    CREATE INDEX builds_by_repo_status ON builds (repo, status, id);
    CREATE INDEX builds_by_branch ON builds (repo, branch, id)
    """,
    # 4: the references an image was pushed or stored under (repo:tag) beside its digests,
    # so a notification or the page can say which tags a build made.
    """
    ALTER TABLE builds ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'
    """,
    # 5: which repository of the registry a push went to (the build page names it; metrics
    # stay per registry).
    """
    ALTER TABLE pushes ADD COLUMN repository TEXT NOT NULL DEFAULT ''
    """,
    # 6: every digest a passed build pushed, by digest, so an image names its build
    # (``scratchd builds --digest``) while the attestation itself stays reproducible:
    # ``image`` is what the tags point at (an index or a manifest), ``platform`` the
    # platform manifest inside an index. Pruning a build deletes its rows.
    """
    CREATE TABLE image_digests (
        digest TEXT NOT NULL,
        build_id INTEGER NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX image_digests_by_digest ON image_digests (digest);
    CREATE INDEX image_digests_by_build ON image_digests (build_id);
    INSERT INTO image_digests (digest, build_id, kind)
    SELECT j.value, b.id, 'image' FROM builds b, json_each(b.images) j WHERE b.status = 'passed'
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found before."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise newer_schema(path, version)
        for number in range(version, SCHEMA_VERSION):
            for statement in statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def newer_schema(path: str, version: int) -> StoreError:
    """The refusal of a database a newer scratchd has migrated (readers and writers alike)."""
    return StoreError(
        f"state database {path} has schema version {version}, newer than this "
        f"scratchd understands ({SCHEMA_VERSION}); upgrade scratchd"
    )


def statements(script: str) -> list[str]:
    """Split ``script`` into statements; a trigger body's own ``;`` does not end one."""
    out, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending)
            pending = ""
    if pending.strip(" \n;"):
        out.append(pending)
    return out
