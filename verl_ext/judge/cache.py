"""Verdict caches: an in-memory LRU and an optional sqlite file shared across runs.

Only successful verdicts are stored; an error is never cached. The sqlite cache is keyed by
(judge model, prompt version, thinking flag, normalised pair), so a new model or a new prompt
never reuses old verdicts. It runs in WAL mode with a busy timeout, which lets several
processes (e.g. Ray reward workers on one node) read and write the same file at once; all
calls, opening included, go through one worker thread per cache so the event loop never
blocks on the disk. The same file holds *claims*: a process about to ask the judge about a
pair claims it first, and another process that meets the pair meanwhile waits for the stored
verdict instead of asking again, so reward workers sharing the file send each pair once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Optional

import cachetools

from verl_ext.core.categories import try_parse_category

logger = logging.getLogger(__name__)

Pair = tuple[str, str]


class LRUVerdictCache(cachetools.LRUCache):
    """A bounded map pair -> answer (``cachetools``); ``capacity`` 0 disables it."""

    def __init__(self, capacity: int) -> None:
        super().__init__(maxsize=capacity)

    def put(self, pair: Pair, answer: Any) -> None:
        if self.maxsize > 0:
            self[pair] = answer


_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    ground_truth TEXT NOT NULL,
    prediction TEXT NOT NULL,
    category TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model, prompt_version, ground_truth, prediction)
)
"""

#: Pairs one process is asking the judge about right now. Reward workers are separate
#: processes with their own memory caches; without a claim, two of them that meet the same new
#: pair at once would both send it. A claim older than ``stale_after_s`` (its owner died) is void.
_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    ground_truth TEXT NOT NULL,
    prediction TEXT NOT NULL,
    claimed REAL NOT NULL,
    PRIMARY KEY (model, prompt_version, ground_truth, prediction)
)
"""

#: Both tables are keyed the same way (``SqliteVerdictCache._key`` fills it).
_KEY = "model=? AND prompt_version=? AND ground_truth=? AND prediction=?"


class SqliteVerdictCache:
    """A persistent verdict cache in one sqlite file, safe with concurrent writers.

    ``namespace`` is the judge model and ``prompt_key`` the prompt version (plus any flag that
    changes the judge's answers); both are part of every key. ``encode`` and ``decode`` turn
    an answer into the stored text and back (categories by default; other judge tasks, such
    as LLM inclusion, store their own answers under their own prompt key). Open it with
    :meth:`open`.
    """

    BUSY_TIMEOUT_MS = 30_000

    def __init__(self, path: str | Path, namespace: str, prompt_key: str, *,
                 encode: Callable[[Any], str] = lambda category: category.label,
                 decode: Callable[[str], Optional[Any]] = try_parse_category) -> None:
        self.path = Path(path).expanduser()
        self.namespace = namespace
        self.prompt_key = prompt_key
        self._encode, self._decode = encode, decode
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-sqlite")
        self._conn: Optional[sqlite3.Connection] = None

    @classmethod
    async def open(cls, path: str | Path, namespace: str, prompt_key: str, **codec: Any) -> "SqliteVerdictCache":
        """Open (creating it if needed) the file on the cache's own thread, off the event loop;
        ``codec`` is ``encode`` / ``decode`` as in the constructor."""
        cache = cls(path, namespace, prompt_key, **codec)
        try:
            await cache._run(cache._open_sync)
        except BaseException:
            cache._executor.shutdown(wait=False)
            raise
        return cache

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # The *_sync methods run on the worker thread only.
    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=self.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        conn.execute(_CLAIMS)
        self._conn = conn

    def _key(self, pair: Pair) -> tuple[str, str, str, str]:
        return (self.namespace, self.prompt_key, pair[0], pair[1])

    def _get_sync(self, pair: Pair) -> Optional[Any]:
        assert self._conn is not None
        row = self._conn.execute(f"SELECT category FROM verdicts WHERE {_KEY}", self._key(pair)).fetchone()
        return self._decode(row[0]) if row else None

    def _put_sync(self, pair: Pair, answer: Any) -> None:
        assert self._conn is not None
        self._conn.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
            (self.namespace, self.prompt_key, pair[0], pair[1], self._encode(answer), time.time()),
        )

    def _claim_sync(self, pair: Pair, stale_after_s: float) -> bool:
        assert self._conn is not None
        key = self._key(pair)
        self._conn.execute(f"DELETE FROM claims WHERE {_KEY} AND claimed < ?", (*key, time.time() - stale_after_s))
        return self._conn.execute("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?)", (*key, time.time())).rowcount == 1

    def _release_sync(self, pair: Pair) -> None:
        assert self._conn is not None
        self._conn.execute(f"DELETE FROM claims WHERE {_KEY}", self._key(pair))

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aget(self, pair: Pair) -> Optional[Any]:
        return await self._run(self._get_sync, pair)

    async def aput(self, pair: Pair, answer: Any) -> None:
        await self._run(self._put_sync, pair, answer)

    async def aclaim(self, pair: Pair, stale_after_s: float) -> bool:
        """True when this process may ask the judge about ``pair`` (no live claim by another)."""
        return await self._run(self._claim_sync, pair, stale_after_s)

    async def stored_or_claim(self, pair: Pair, stale_after_s: float, poll_s: float = 0.02) -> Optional[Any]:
        """The stored verdict, waiting for it while another process (a reward worker sharing this
        file) asks the judge about the same pair; ``None`` once this process holds the claim and
        must ask, then :meth:`aput` and :meth:`arelease`. An owner that fails only releases.
        A file that cannot be read counts as "ask": the cache only saves requests."""
        try:
            while True:
                stored = await self.aget(pair)
                if stored is not None:
                    return stored
                if await self.aclaim(pair, stale_after_s):
                    # The owner stores before it releases: a verdict that landed between the
                    # read above and this claim is there now.
                    stored = await self.aget(pair)
                    if stored is not None:
                        await self.arelease(pair)
                    return stored
                await asyncio.sleep(poll_s)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("judge cache claim on %s failed: %s", self.path, exc)
            return None

    async def arelease(self, pair: Pair) -> None:
        try:
            await self._run(self._release_sync, pair)
        except (sqlite3.Error, OSError) as exc:  # the claim expires after stale_after_s
            logger.warning("judge cache release on %s failed: %s", self.path, exc)

    async def aclose(self) -> None:
        try:
            await self._run(self._close_sync)
        finally:
            self._executor.shutdown(wait=False)
