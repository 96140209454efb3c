"""BatchDecoder: responses decoded off the event loop, the rollouts of one loop turn in one hop.

Uses the offline kit's real tokenizer; a wrapper only records which thread decodes.
"""

from __future__ import annotations

import asyncio
import threading

from verl_ext.reward.decoding import BatchDecoder


class ThreadRecordingTokenizer:
    def __init__(self, tokenizer, fail: bool = False):
        self.tokenizer, self.fail, self.threads = tokenizer, fail, []

    def batch_decode(self, batch, skip_special_tokens):
        self.threads.append(threading.get_ident())
        if self.fail:
            raise ValueError("token id out of range")
        return self.tokenizer.batch_decode(batch, skip_special_tokens=skip_special_tokens)


def _ids(tokenizer, texts):
    return [tokenizer.encode(f"<think>t</think><answer>{text}</answer>") for text in texts]


def test_concurrent_decodes_share_one_hop_off_the_loop_and_match_decode(tiny_tokenizer):
    texts = [f"bird {i}" for i in range(50)]
    recorder = ThreadRecordingTokenizer(tiny_tokenizer)
    decoder = BatchDecoder(recorder)

    async def run():
        loop_thread = threading.get_ident()
        results = await asyncio.gather(*(decoder.decode(ids) for ids in _ids(tiny_tokenizer, texts)))
        return loop_thread, results

    loop_thread, results = asyncio.run(run())
    expected = [tiny_tokenizer.decode(ids, skip_special_tokens=True) for ids in _ids(tiny_tokenizer, texts)]
    assert results == expected
    assert decoder.batches == 1
    assert recorder.threads and all(thread != loop_thread for thread in recorder.threads)


def test_decodes_asked_in_later_turns_get_their_own_hop(tiny_tokenizer):
    decoder = BatchDecoder(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, ["sparrow", "finch"])

    async def run():
        first = await decoder.decode(ids[0])
        second = await decoder.decode(ids[1])
        return first, second

    first, second = asyncio.run(run())
    assert "sparrow" in first and "finch" in second
    assert decoder.batches == 2


def test_a_failing_decode_reaches_every_rollout_of_the_batch(tiny_tokenizer):
    decoder = BatchDecoder(ThreadRecordingTokenizer(tiny_tokenizer, fail=True))

    async def run():
        return await asyncio.gather(*(decoder.decode(ids) for ids in _ids(tiny_tokenizer, ["a", "b", "c"])),
                                    return_exceptions=True)

    results = asyncio.run(run())
    assert len(results) == 3 and all(isinstance(r, ValueError) for r in results)


def test_a_cancelled_rollout_does_not_stop_its_batch_peers(tiny_tokenizer):
    decoder = BatchDecoder(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, ["heron", "egret"])

    async def run():
        doomed = asyncio.ensure_future(decoder.decode(ids[0]))
        kept = asyncio.ensure_future(decoder.decode(ids[1]))
        await asyncio.sleep(0)  # both joined the pending batch
        doomed.cancel()
        return await kept, doomed

    kept, doomed = asyncio.run(run())
    assert "egret" in kept and doomed.cancelled()


def test_one_decoder_serves_successive_event_loops(tiny_tokenizer):
    """A new event loop (``asyncio.run`` twice) finds no batch left over from the old one."""
    decoder = BatchDecoder(tiny_tokenizer)
    for _ in range(2):
        assert "wren" in asyncio.run(decoder.decode(_ids(tiny_tokenizer, ["wren"])[0]))
    assert decoder.batches == 2
