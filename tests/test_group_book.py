"""The group book that lets siblings of a GRPO group meet (pure asyncio, no Ray)."""

import asyncio

import pytest

from verl_ext.reward.group_book import GroupBook

GENERIC, LESS, SPECIFIC = 2, 3, 4


async def test_waiter_returns_when_the_group_completes():
    book = GroupBook()
    waiting = asyncio.ensure_future(book.report("g", 0, 3, GENERIC, True, 5))
    await asyncio.sleep(0)
    book.arrive("g", 1, 3, None)
    await asyncio.sleep(0)
    assert not waiting.done()
    book.arrive("g", 2, 3, GENERIC)
    view = await asyncio.wait_for(waiting, 1)
    assert (view.best_level, view.seen, view.complete, view.timed_out) == (GENERIC, 3, True, False)
    assert book.open_groups == 0 and book.waiting == 0


async def test_waiter_returns_as_soon_as_a_better_sibling_arrives():
    book = GroupBook()
    waiting = asyncio.ensure_future(book.report("g", 0, 10, GENERIC, True, 5))
    await asyncio.sleep(0)
    book.arrive("g", 1, 10, SPECIFIC)
    view = await asyncio.wait_for(waiting, 1)
    assert view.best_level == SPECIFIC and not view.complete


async def test_equal_sibling_does_not_release_the_waiter():
    book = GroupBook()
    waiting = asyncio.ensure_future(book.report("g", 0, 3, LESS, True, 5))
    await asyncio.sleep(0)
    book.arrive("g", 1, 3, LESS)
    await asyncio.sleep(0.01)
    assert not waiting.done()
    book.arrive("g", 2, 3, GENERIC)
    assert (await waiting).best_level == LESS


async def test_timeout_returns_best_so_far_and_is_counted():
    book = GroupBook()
    book.arrive("g", 1, 3, LESS)
    beaten = await book.report("g", 0, 3, GENERIC, True, 0.05)  # a better sibling is already there
    assert not beaten.timed_out and beaten.best_level == LESS
    view = await book.report("h", 0, 2, GENERIC, True, 0.05)
    assert view.timed_out and view.seen == 1
    assert book.timeouts == 1


async def test_duplicate_session_counts_once():
    book = GroupBook()
    book.arrive("g", 0, 3, GENERIC)
    book.arrive("g", 0, 3, GENERIC)
    assert book.arrive("g", 1, 3, GENERIC).seen == 2


async def test_late_duplicate_after_decision_returns_final_view_at_once():
    book = GroupBook()
    book.arrive("g", 0, 2, GENERIC)
    book.arrive("g", 1, 2, LESS)
    view = await asyncio.wait_for(book.report("g", 1, 2, LESS, True, 5), 0.5)
    assert view.complete and view.best_level == LESS


async def test_inconsistent_group_size_is_an_error():
    book = GroupBook()
    book.arrive("g", 0, 4, GENERIC)
    with pytest.raises(ValueError, match="size"):
        book.arrive("g", 1, 5, GENERIC)


def test_stale_groups_are_evicted():
    book = GroupBook()
    book.arrive("g", 0, 4, GENERIC)
    assert book.evict_stale(older_than_s=0.0) == 1 and book.open_groups == 0
