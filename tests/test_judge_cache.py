"""Verdict caches: LRU bounds, and the sqlite file under concurrent writers (threads and processes)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading

from verl_ext.core.categories import Category
from verl_ext.judge.cache import LRUVerdictCache, SqliteVerdictCache

CATEGORIES = list(Category)


def test_lru_evicts_the_least_recently_used():
    cache = LRUVerdictCache(2)
    cache.put(("a", "1"), Category.WRONG)
    cache.put(("a", "2"), Category.GENERIC)
    assert cache.get(("a", "1")) is Category.WRONG  # now most recent
    cache.put(("a", "3"), Category.SPECIFIC)
    assert cache.get(("a", "2")) is None and len(cache) == 2
    disabled = LRUVerdictCache(0)
    disabled.put(("a", "1"), Category.WRONG)
    assert disabled.get(("a", "1")) is None


async def _lookup(path, namespace: str, prompt_key: str, pair):
    cache = await SqliteVerdictCache.open(path, namespace, prompt_key)
    try:
        return await cache.aget(pair)
    finally:
        await cache.aclose()


async def test_sqlite_keys_hold_model_and_prompt_version(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = await SqliteVerdictCache.open(path, "model-a", "prompt-v1")
    await cache.aput(("dog", "samoyed"), Category.MORE_SPECIFIC)
    await cache.aclose()
    assert await _lookup(path, "model-a", "prompt-v1", ("dog", "samoyed")) is Category.MORE_SPECIFIC
    assert await _lookup(path, "model-b", "prompt-v1", ("dog", "samoyed")) is None
    assert await _lookup(path, "model-a", "prompt-v2", ("dog", "samoyed")) is None


_WRITER = textwrap.dedent(
    """
    import asyncio
    import sys
    from verl_ext.core.categories import Category
    from verl_ext.judge.cache import SqliteVerdictCache
    path, worker = sys.argv[1], int(sys.argv[2])

    async def main():
        cache = await SqliteVerdictCache.open(path, "judge", "v1")
        cats = list(Category)
        for i in range(300):
            # Overlapping keys: every worker writes pairs 0..299, plus its own 100.
            await cache.aput(("gt", f"p{i}"), cats[i % 6])
            if i < 100:
                await cache.aput((f"gt{worker}", f"own{i}"), cats[(i + worker) % 6])
            assert await cache.aget(("gt", f"p{i}")) is cats[i % 6]
        await cache.aclose()

    asyncio.run(main())
    print("ok")
    """
)


def test_sqlite_is_safe_with_concurrent_processes_and_threads(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    workers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, path, str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(3)
    ]
    cache = asyncio.run(SqliteVerdictCache.open(path, "judge", "v1"))
    errors: list[BaseException] = []

    async def write(offset: int) -> None:
        for i in range(100):
            await cache.aput(("thread", f"t{offset}-{i}"), CATEGORIES[i % 6])

    def write_from_thread(offset: int) -> None:  # each thread with its own event loop
        try:
            asyncio.run(write(offset))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write_from_thread, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0 and out.strip() == "ok", err
    assert not errors
    with sqlite3.connect(path) as db:
        count = db.execute("SELECT COUNT(*) FROM verdicts WHERE model='judge' AND prompt_version='v1'").fetchone()[0]
    assert count == 300 + 3 * 100 + 3 * 100
    assert asyncio.run(cache.aget(("gt2", "own5"))) is CATEGORIES[(5 + 2) % 6]
    asyncio.run(cache.aclose())
