"""The votes in SQLite (the standard library's sqlite3): WAL journal, synchronous=FULL (a vote
acknowledged to a browser survives a kill -9 of the server), a schema version table, one
transaction per vote (BEGIN IMMEDIATE … COMMIT), and idempotent votes: the browser makes a vote
id once and resends the same id until it gets an answer, so a vote is stored at most once.

Each thread opens its own connection (`connect`); the database holds voter ids, plans (asset ids)
and votes, never method names (they are resolved from study.json when the results are computed).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import BadInput

SCHEMA_VERSION = 1
DATABASE = "votes.sqlite3"
VOTE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
VOTER_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_CLIENT_MS = 24 * 3600 * 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS voters (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    plan TEXT NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS shown (
    voter_id TEXT NOT NULL REFERENCES voters(id),
    trial_id TEXT NOT NULL,
    shown REAL NOT NULL,
    PRIMARY KEY (voter_id, trial_id)
);
CREATE TABLE IF NOT EXISTS votes (
    vote_id TEXT PRIMARY KEY,
    voter_id TEXT NOT NULL REFERENCES voters(id),
    step INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    chosen TEXT NOT NULL,
    position INTEGER NOT NULL,
    arrangement TEXT NOT NULL,
    client_ms INTEGER,
    server_ms INTEGER,
    created REAL NOT NULL,
    UNIQUE (voter_id, trial_id)
);
"""


class VoteRefused(Exception):
    """A vote that is not stored; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.row_factory = sqlite3.Row
    return connection


def initialise(path: Path) -> None:
    """Create the tables (or check an existing database's schema version); WAL mode persists."""
    connection = connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        rows = connection.execute("SELECT version FROM schema_version").fetchall()
        if not rows:
            connection.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        elif rows[0][0] != SCHEMA_VERSION:
            connection.execute("ROLLBACK")
            raise BadInput(f"{path} has schema version {rows[0][0]}; this code reads {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    finally:
        connection.close()


def add_voter(connection: sqlite3.Connection, voter_id: str, plan: list[dict[str, Any]]) -> None:
    connection.execute(
        "INSERT INTO voters (id, created, plan) VALUES (?, ?, ?)", (voter_id, time.time(), json.dumps(plan))
    )


def voter_plan(connection: sqlite3.Connection, voter_id: str) -> list[dict[str, Any]] | None:
    row = connection.execute("SELECT plan FROM voters WHERE id = ?", (voter_id,)).fetchone()
    return None if row is None else json.loads(row["plan"])


def voted_trials(connection: sqlite3.Connection, voter_id: str) -> set[str]:
    rows = connection.execute("SELECT trial_id FROM votes WHERE voter_id = ?", (voter_id,))
    return {row[0] for row in rows}


def mark_shown(connection: sqlite3.Connection, voter_id: str, trial_id: str) -> None:
    connection.execute(
        "INSERT OR IGNORE INTO shown (voter_id, trial_id, shown) VALUES (?, ?, ?)",
        (voter_id, trial_id, time.time()),
    )


@dataclass(frozen=True)
class Vote:
    vote_id: str
    voter_id: str
    trial_id: str
    chosen: str
    client_ms: int | None


def same_vote(row: sqlite3.Row, vote: Vote) -> bool:
    return (row["voter_id"], row["trial_id"], row["chosen"]) == (vote.voter_id, vote.trial_id, vote.chosen)


def record_vote(connection: sqlite3.Connection, vote: Vote) -> bool:
    """Store a vote in one transaction; True if stored now, False if this vote id was stored before
    with the same content (a resent vote). Anything else is refused with VoteRefused and changes
    nothing."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        stored = check_vote(connection, vote)
        connection.execute("COMMIT")
        return stored
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def check_vote(connection: sqlite3.Connection, vote: Vote) -> bool:
    row = connection.execute("SELECT * FROM votes WHERE vote_id = ?", (vote.vote_id,)).fetchone()
    if row is not None:
        if same_vote(row, vote):
            return False
        raise VoteRefused(409, "this vote id was used for another vote")
    plan = voter_plan(connection, vote.voter_id)
    if plan is None:
        raise VoteRefused(403, "unknown voter")
    steps = {entry["trial"]: step for step, entry in enumerate(plan)}
    if vote.trial_id not in steps:
        raise VoteRefused(404, "unknown trial")
    arrangement = plan[steps[vote.trial_id]]["arrangement"]
    if vote.chosen not in arrangement:
        raise VoteRefused(422, "that image is not part of this trial")
    if vote.trial_id in voted_trials(connection, vote.voter_id):
        raise VoteRefused(409, "this trial has already been answered")
    shown = connection.execute(
        "SELECT shown FROM shown WHERE voter_id = ? AND trial_id = ?", (vote.voter_id, vote.trial_id)
    ).fetchone()
    now = time.time()
    server_ms = None if shown is None else round((now - shown[0]) * 1000)
    connection.execute(
        "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            vote.vote_id,
            vote.voter_id,
            steps[vote.trial_id],
            vote.trial_id,
            vote.chosen,
            arrangement.index(vote.chosen),
            json.dumps(arrangement),
            vote.client_ms,
            server_ms,
            now,
        ),
    )
    if len(voted_trials(connection, vote.voter_id)) == len(plan):
        connection.execute("UPDATE voters SET finished = ? WHERE id = ?", (now, vote.voter_id))
    return True


def read_votes(path: Path) -> list[dict[str, Any]]:
    return read_rows(path, "SELECT * FROM votes ORDER BY created, vote_id")


def read_voters(path: Path) -> list[dict[str, Any]]:
    return read_rows(path, "SELECT id, created, finished FROM voters ORDER BY created, id")


def read_rows(path: Path, query: str) -> list[dict[str, Any]]:
    """The rows of a read-only query, as dicts; the connection closed whatever happens."""
    connection = connect(path)
    try:
        rows = connection.execute(query).fetchall()
    finally:
        connection.close()
    return [dict(row) for row in rows]
