"""Decode responses off the event loop, a batch per thread hop.

verl's reward loop runs ``run_single`` for many rollouts concurrently on one event loop. A
decode on that loop blocks every other rollout's judge I/O, so it belongs in a worker thread
(verl's own managers use ``run_in_executor`` per rollout). One hop per rollout, though, costs
more than the decode of a short answer: it halved the manager's throughput in
``benchmarks/reward_overhead.py``. :class:`BatchDecoder` collects the decodes asked for within
one turn of the loop and runs them with one ``batch_decode`` call in one hop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence


class BatchDecoder:
    """``await decoder.decode(ids)``: the text, decoded in a worker thread with its loop-turn peers."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Sequence[int], asyncio.Future]]] = {}
        self.batches = 0  # thread hops so far (tests and benchmarks read it)

    async def decode(self, ids: Sequence[int]) -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        if not pending:
            # Runs after the callbacks already queued: every rollout started in this turn joins.
            loop.call_soon(self._flush, loop)
        pending.append((ids, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if not batch:
            return
        self.batches += 1
        hop = loop.run_in_executor(None, self._decode_all, [ids for ids, _ in batch])
        hop.add_done_callback(lambda done: _deliver(done, [future for _, future in batch]))

    def _decode_all(self, batch: list[Sequence[int]]) -> list[str]:
        return list(self.tokenizer.batch_decode(batch, skip_special_tokens=True))


def _deliver(done: asyncio.Future, futures: list[asyncio.Future]) -> None:
    if done.cancelled():  # the loop is shutting down
        for future in futures:
            future.cancel()
        return
    error = done.exception()
    texts = None if error is not None else done.result()
    for index, future in enumerate(futures):
        if future.done():  # its rollout was cancelled
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(texts[index])
