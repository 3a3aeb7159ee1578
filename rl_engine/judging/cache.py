"""A content-addressed cache of judgments, so retries and resumed runs never pay twice.

The key is the SHA-256 of everything that decides a judgment: the judge's identity (kind,
endpoint, model, sampling settings), the prompt template's identity (a hash of its text),
the instruction, both responses in their order, and the criteria. Swapping the two
responses gives a different key — position bias makes it a different question. INVALID
judgments are never stored: the next attempt should ask again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from rl_engine.judging.types import Judge, Judgment, PairRequest
from rl_engine.judging.verdict import Verdict

__all__ = [
    "CachedJudge",
    "InMemoryJudgmentCache",
    "JudgmentCache",
    "SQLiteJudgmentCache",
    "judgment_key",
]


def judgment_key(judge_identity: str, template_identity: str, request: PairRequest) -> str:
    """The cache key of ``request`` judged by ``judge_identity`` with ``template_identity``."""
    material = json.dumps(
        {
            "judge": judge_identity,
            "template": template_identity,
            "instruction": request.instruction,
            "A": request.first,
            "B": request.second,
            "criteria": request.criteria,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class JudgmentCache(Protocol):
    """Storage for judgments by key; implementations are safe to share between threads."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Judgment]: ...

    def put_many(self, entries: Mapping[str, Judgment]) -> None: ...


class InMemoryJudgmentCache:
    """A dict behind a lock, for one process."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: Sequence[str]) -> dict[str, Judgment]:
        with self._lock:
            found = {key: self._entries[key] for key in keys if key in self._entries}
        return {key: Judgment.from_dict(payload) for key, payload in found.items()}

    def put_many(self, entries: Mapping[str, Judgment]) -> None:
        valid = {k: j.to_dict() for k, j in entries.items() if j.verdict is not Verdict.INVALID}
        with self._lock:
            self._entries.update(valid)


class SQLiteJudgmentCache:
    """Judgments in a SQLite file, shared safely by threads and processes (WAL journal, a
    busy timeout, one short transaction per write)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        with self._connection() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS judgments ("
                " key TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at REAL NOT NULL)"
            )

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not be shared across threads.
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self._busy_timeout_s)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def __len__(self) -> int:
        (count,) = self._connection().execute("SELECT COUNT(*) FROM judgments").fetchone()
        return int(count)

    def get_many(self, keys: Sequence[str]) -> dict[str, Judgment]:
        found: dict[str, Judgment] = {}
        unique = list(dict.fromkeys(keys))
        connection = self._connection()
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT key, payload FROM judgments WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, payload in rows:
                found[key] = Judgment.from_dict(json.loads(payload))
        return found

    def put_many(self, entries: Mapping[str, Judgment]) -> None:
        now = time.time()
        rows = [
            (key, json.dumps(judgment.to_dict(), ensure_ascii=False, default=str), now)
            for key, judgment in entries.items()
            if judgment.verdict is not Verdict.INVALID
        ]
        if not rows:
            return
        with self._connection() as connection:  # one transaction
            connection.executemany(
                "INSERT OR REPLACE INTO judgments (key, payload, created_at) VALUES (?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _as_cached(judgment: Judgment) -> Judgment:
    return dataclasses.replace(judgment, cached=True, attempts=0, latency_s=0.0)


class _Identified(Judge, Protocol):
    @property
    def identity(self) -> str: ...

    def template_identity(self, request: PairRequest) -> str: ...


class CachedJudge:
    """Wraps a judge with a :class:`JudgmentCache`: cached pairs come back with
    ``cached=True``, ``attempts=0`` and no call; the rest go to the judge in one batch and
    every valid result is stored."""

    def __init__(self, judge: _Identified, cache: JudgmentCache) -> None:
        self.judge = judge
        self.cache = cache
        self.name = judge.name

    @property
    def identity(self) -> str:
        return self.judge.identity

    def template_identity(self, request: PairRequest) -> str:
        return self.judge.template_identity(request)

    def keys(self, requests: Iterable[PairRequest]) -> list[str]:
        return [
            judgment_key(self.judge.identity, self.judge.template_identity(r), r) for r in requests
        ]

    async def compare(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        keys = self.keys(requests)
        hits = self.cache.get_many(keys)
        results: list[Judgment | None] = [None] * len(requests)
        for index, key in enumerate(keys):
            hit = hits.get(key)
            if hit is not None:
                results[index] = _as_cached(hit)
        missing = [i for i, result in enumerate(results) if result is None]
        if missing:
            fresh = await self.judge.compare([requests[i] for i in missing])
            self.cache.put_many(
                {keys[i]: judgment for i, judgment in zip(missing, fresh, strict=True)}
            )
            for i, judgment in zip(missing, fresh, strict=True):
                results[i] = judgment
        return [result for result in results if result is not None]

    def compare_sync(self, requests: Sequence[PairRequest]) -> list[Judgment]:
        # The inner judge decides how to run blocking (its own loop, a thread, or inline).
        keys = self.keys(requests)
        hits = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in hits]
        fresh = self.judge.compare_sync([requests[i] for i in missing]) if missing else []
        self.cache.put_many({keys[i]: judgment for i, judgment in zip(missing, fresh, strict=True)})
        by_index = dict(zip(missing, fresh, strict=True))
        results: list[Judgment] = []
        for index, key in enumerate(keys):
            if index in by_index:
                results.append(by_index[index])
            else:
                results.append(_as_cached(hits[key]))
        return results
