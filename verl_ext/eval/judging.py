"""Judge stage: grade every distinct (ground truth, answer) pair once, through the Judge protocol.

Answers are extracted from the responses (``core.answer.extract_answer``); parse failures
never reach the judge. Pairs are normalised (``core.answer.normalise_label``), deduplicated,
and sent in chunks with ``grade_many``; each chunk's successful verdicts are appended to
disk before the next chunk starts. Judge errors are counted, never stored, and so are
retried by the next run. A network error or an unavailable judge never discards finished
work: the stage ends, the score stage reports the errors, and a rerun finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from tqdm import tqdm

from verl_ext.core.answer import extract_answer, normalise_label
from verl_ext.judge.base import Judge, JudgeUnavailableError
from verl_ext.eval.store import JsonlStore, content_key

Pair = tuple[str, str]


@dataclass
class JudgeResult:
    """Category label per normalised pair, the pairs that failed, and what this run sent."""

    verdicts: dict[Pair, str]
    errors: dict[Pair, str] = field(default_factory=dict)
    sent: int = 0
    reused: int = 0
    stopped_early: Optional[str] = None
    judge_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.errors


def judge_identity(settings: Mapping[str, Any]) -> dict:
    """What makes two judges give the same grades: model (or test double), prompt, constraint.

    Server URLs are left out on purpose: the same model behind another address grades alike.
    """
    identity = {"impl": settings.get("impl") or None, "model": settings.get("model"),
                "constraint": settings.get("constraint")}
    try:
        from verl_ext.judge import prompt as judge_prompt

        identity["prompt_version"] = getattr(judge_prompt, "PROMPT_VERSION", None)
    except ImportError:
        identity["prompt_version"] = None
    return identity


def judge_stage_key(identity: Mapping[str, Any]) -> str:
    return content_key({"stage": "judge/1", **identity})


def normalised_pair(ground_truth: str, response: str) -> Optional[Pair]:
    """The pair the judge sees for one response, or ``None`` for a parse failure."""
    answer = extract_answer(response)
    if answer is None:
        return None
    return normalise_label(ground_truth), normalise_label(answer)


def pairs_to_judge(truths_and_responses: Iterable[tuple[str, Iterable[str]]]) -> list[Pair]:
    """Distinct normalised pairs, in first-seen order."""
    ordered: dict[Pair, None] = {}
    for truth, responses in truths_and_responses:
        for response in responses:
            pair = normalised_pair(truth, response)
            if pair is not None:
                ordered.setdefault(pair)
    return list(ordered)


def _pair_key(pair: Pair) -> str:
    return content_key(list(pair))


async def run_judge_stage(
    pairs: list[Pair],
    judge: Judge,
    *,
    store_path: Path,
    chunk_size: int = 512,
    progress: bool = True,
) -> JudgeResult:
    """Grade the pairs missing from ``store_path``; return verdicts for all of them."""
    store = JsonlStore(store_path)
    stored = store.load()
    result = JudgeResult(verdicts={})
    todo: list[Pair] = []
    for pair in pairs:
        record = stored.get(_pair_key(pair))
        if record is not None:
            result.verdicts[pair] = record["category"]
        else:
            todo.append(pair)
    result.reused = len(result.verdicts)
    with tqdm(total=len(todo), desc="judge", unit="pair", disable=not progress) as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            if result.stopped_early:
                result.errors.update((p, result.stopped_early) for p in chunk)
                continue
            try:
                verdicts = await judge.grade_many(chunk)
            except JudgeUnavailableError as error:
                result.stopped_early = f"judge unavailable: {error}"
                result.errors.update((p, result.stopped_early) for p in chunk)
                continue
            except Exception as error:  # one bad chunk must not end the evaluation
                result.errors.update((p, f"{type(error).__name__}: {error}") for p in chunk)
                bar.update(len(chunk))
                continue
            records = []
            for pair, verdict in zip(chunk, verdicts):
                if verdict.ok:
                    result.verdicts[pair] = verdict.category.label
                    records.append({"key": _pair_key(pair), "gt": pair[0], "pred": pair[1],
                                    "category": verdict.category.label, "source": verdict.source})
                else:
                    result.errors[pair] = verdict.error or "unknown judge error"
            store.append(records)
            result.sent += len(chunk)
            bar.update(len(chunk))
    metrics = judge.pop_metrics()
    result.judge_metrics = {k: float(v) for k, v in metrics.items()} if metrics else {}
    return result
