"""The board's SQLite store: accepted entries and their results, each with the evidence it was accepted on.

Checks read the store through a read-only connection (a missing file stays missing); an accepted bundle is
written in one ``BEGIN IMMEDIATE`` transaction, so a failure or a concurrent writer leaves the file as it was.
The rollback journal (not WAL) keeps the database one file, which readers never modify.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path

from ..errors import SevereError
from ..provenance import utc_now


DB_SCHEMA = "severe-bench/leaderboard-db/v1"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    paper TEXT,
    backbone TEXT NOT NULL,
    architecture TEXT,
    checkpoint_key TEXT NOT NULL,
    checkpoint_sha256 TEXT,
    checkpoint_name TEXT,
    status TEXT NOT NULL CHECK (status IN ('main', 'partial')),
    bundle_sha256 TEXT NOT NULL UNIQUE,
    manifest TEXT NOT NULL,
    submitted_at TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    task TEXT NOT NULL,
    seed INTEGER NOT NULL,
    checkpoint_key TEXT NOT NULL,
    protocol_name TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    track TEXT,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    higher_is_better INTEGER NOT NULL,
    unit TEXT,
    code_version TEXT,
    created_at TEXT,
    labels_checked INTEGER NOT NULL,
    result_json TEXT NOT NULL,
    predictions_zlib BLOB NOT NULL,
    UNIQUE (checkpoint_key, protocol_hash, seed),
    UNIQUE (entry_id, task, seed)
);
"""


def _readonly(db: Path) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no board yet."""
    db = Path(db)
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise SevereError(f"{db}: not a leaderboard database ({exc})") from exc
    conn.row_factory = sqlite3.Row
    return conn


def _has_tables(conn) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='results'").fetchone()[0] == 1


def _conflicts(conn, key: str, hashes: list[str], name: str | None) -> list[str]:
    if conn is None or not _has_tables(conn):
        return []
    out = []
    marks = ",".join("?" * len(hashes))
    rows = conn.execute(
        f"SELECT r.task, r.protocol_hash, e.id, e.name, e.added_at FROM results r JOIN entries e ON e.id = r.entry_id "
        f"WHERE r.checkpoint_key = ? AND r.protocol_hash IN ({marks}) GROUP BY r.task, r.protocol_hash, e.id "
        "ORDER BY r.task", [key, *hashes]).fetchall()
    for r in rows:
        shown = key if key.startswith("scratch:") else key[:16] + "…"
        out.append(f"{r['task']}: duplicate — this checkpoint ({shown}) under protocol {r['protocol_hash']} is on "
                   f"the board already as entry #{r['id']} {r['name']!r} (added {r['added_at']})")
    if name:
        owner = conn.execute("SELECT id, checkpoint_key FROM entries WHERE name = ?", (name,)).fetchone()
        if owner is not None:
            out.append(f"entry name {name!r} is taken by entry #{owner['id']}; submit under another --name")
    return out


def duplicate_checker(db: Path):
    """``duplicates_of(key, hashes, name)`` for ``check_bundle``, reading the board read-only."""
    def duplicates_of(key: str, hashes: list[str], name: str | None) -> list[str]:
        conn = _readonly(db)
        if conn is None:
            return []
        with closing(conn):
            return _conflicts(conn, key, hashes, name)
    return duplicates_of


def add_entry(db: Path, bundle, verdict) -> int:
    """Store an accepted bundle in one transaction; returns the new entry id."""
    if not verdict.accepted:
        raise SevereError("refusing to store a rejected bundle")
    db = Path(db)
    created = not db.exists()
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN IMMEDIATE")
        for stmt in filter(str.strip, _DDL.split(";")):
            conn.execute(stmt)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (DB_SCHEMA,))
        schema = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        if schema != DB_SCHEMA:
            raise SevereError(f"{db}: a leaderboard database of schema {schema!r}, not {DB_SCHEMA!r}")
        m = bundle.manifest
        entry, ckpt = m["entry"], m["checkpoint"]
        # checked again inside the transaction: another writer may have added the same checkpoint meanwhile
        late = _conflicts(conn, verdict.checkpoint_key, sorted({r.result["protocol"]["hash"] for r in verdict.runs}),
                          entry["name"])
        if late:
            raise SevereError("bundle rejected:\n  - " + "\n  - ".join(late))
        cur = conn.execute(
            "INSERT INTO entries (name, paper, backbone, architecture, checkpoint_key, checkpoint_sha256, "
            "checkpoint_name, status, bundle_sha256, manifest, submitted_at, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (entry["name"].strip(), entry.get("paper"), entry.get("backbone") or ckpt.get("architecture") or "?",
             ckpt.get("architecture"), verdict.checkpoint_key, ckpt.get("sha256"), ckpt.get("name"), verdict.status,
             bundle.sha256, json.dumps(m, sort_keys=True), m.get("created_at"), utc_now()))
        entry_id = cur.lastrowid
        for run in verdict.runs:
            r = run.result
            conn.execute(
                "INSERT INTO results (entry_id, task, seed, checkpoint_key, protocol_name, protocol_hash, track, metric, "
                "value, higher_is_better, unit, code_version, created_at, labels_checked, result_json, predictions_zlib) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (entry_id, run.task, run.seed, verdict.checkpoint_key, r["protocol"]["name"], r["protocol"]["hash"],
                 r["protocol"].get("track"), r["metric"]["name"], float(r["metric"]["value"]),
                 int(bool(r["metric"]["higher_is_better"])), r["metric"].get("unit"), r.get("code_version"),
                 r.get("created_at"), int(run.labels_checked), json.dumps(r, sort_keys=True),
                 zlib.compress(json.dumps(run.predictions, sort_keys=True).encode(), 6)))
        conn.execute("COMMIT")
        return entry_id
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
        if created:
            db.unlink(missing_ok=True)
        raise
    finally:
        conn.close()


def read_board(db: Path) -> tuple[list[dict], list[dict]]:
    """(entries, results) of the board as plain dicts; results carry their parsed result JSON under ``doc``.
    An absent database is an empty board."""
    conn = _readonly(db)
    if conn is None:
        return [], []
    with closing(conn):
        if not _has_tables(conn):
            return [], []
        entries = [dict(r) for r in conn.execute("SELECT * FROM entries ORDER BY id")]
        results = []
        for r in conn.execute("SELECT id, entry_id, task, seed, protocol_name, protocol_hash, track, metric, value, "
                              "higher_is_better, unit, code_version, created_at, labels_checked, result_json "
                              "FROM results ORDER BY entry_id, task, seed"):
            row = dict(r)
            row["doc"] = json.loads(row.pop("result_json"))
            results.append(row)
    for e in entries:
        e["manifest"] = json.loads(e["manifest"])
    return entries, results
