"""Judge stages: ask a judge about every distinct pair once, through the judge client.

Protocol 1 grades (ground truth, answer) pairs into the six categories; protocol 2's LLM
inclusion (LI) asks the same client with another task (``judge.inclusion``). For protocol 1,
answers are extracted from the responses (``core.answer.extract_answer``); parse failures
never reach the judge. Pairs are normalised (``core.answer.normalise_label``), deduplicated,
and sent in chunks with ``grade_many``; each chunk's successful answers are appended to
disk before the next chunk starts. Judge errors are counted, never stored, and so are
retried by the next run. A network error or an unavailable judge never discards finished
work: the stage ends, the score stage reports the errors, and a rerun finishes the job.

The stage file is keyed by everything that changes the judge's answers
(:func:`judge_stage_key`): the model (or test double and its settings), the exact request the
server receives apart from the pair (prompt text, temperature, reply token limit, output
constraint, thinking flag), and the source of the code that reads the replies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx
from tqdm import tqdm

from verl_ext.core.answer import extract_answer, normalise_label
from verl_ext.eval.store import JsonlStore, code_fingerprint, content_key
from verl_ext.judge.base import Judge, JudgeUnavailableError
from verl_ext.judge.task import GRADING, JudgeTask

#: What a judge that talks over the network may raise for a chunk: counted as judge errors of
#: its pairs (a re-run retries them). Anything else is a bug and ends the stage with its traceback.
TRANSPORT_ERRORS = (httpx.HTTPError, OSError, asyncio.TimeoutError)

Pair = tuple[str, str]

#: Judge settings that change how the server is reached, never what it answers.
TRANSPORT_SETTINGS = frozenset({
    "urls", "api_key_env", "timeout_s", "max_retries", "max_concurrency", "failure_budget_s", "on_failure",
    "cache_path", "cache_size", "backoff_base_s", "backoff_max_s", "breaker_failures", "breaker_cooldown_s",
})


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


def judge_identity(settings: Mapping[str, Any], task: JudgeTask = GRADING) -> dict:
    """The judge as the report names it: model (or test double), prompt version and the
    settings that change its answers. Server URLs are left out on purpose: the same model
    behind another address answers alike."""
    identity: dict[str, Any] = {"impl": settings.get("impl") or None, "model": settings.get("model"),
                                "prompt_version": task.name}
    if identity["impl"] is None:  # read from the request actually sent, so each task reports its own
        config = _judge_config(settings)
        request = task.request_body(config, str(config.model), ("{reference}", "{prediction}"))
        constraint = "json_schema" if "response_format" in request else (
            "choice" if "structured_outputs" in request else "text")
        identity.update(constraint=constraint, enable_thinking=config.enable_thinking,
                        max_tokens=request.get("max_tokens"))
    return identity


def judge_stage_key(settings: Mapping[str, Any], task: JudgeTask = GRADING) -> str:
    """The stage file's key: everything that changes the answers (see the module docstring)."""
    answer_settings = {k: v for k, v in settings.items() if k not in TRANSPORT_SETTINGS}
    impl = settings.get("impl")
    if impl:  # a test double: its own settings (e.g. a rule table) and its code decide
        code = [code_fingerprint(*task.modules), _impl_code(str(impl))]
        return content_key({"stage": "judge", "task": task.name, "settings": answer_settings, "code": code})
    config = _judge_config(settings)
    request = task.request_body(config, str(config.model), ("{reference}", "{prediction}"))
    return content_key({"stage": "judge", "task": task.name, "settings": answer_settings, "request": request,
                        "code": code_fingerprint(*task.modules)})


def _impl_code(impl: str) -> Optional[str]:
    """The source fingerprint of a ``module:factory`` judge, or None for a judge passed in by name only."""
    try:
        return code_fingerprint(impl.partition(":")[0])
    except (ValueError, ImportError):
        return None


def _judge_config(settings: Mapping[str, Any]):
    from verl_ext.judge.config import JudgeConfig

    return JudgeConfig.from_mapping(settings)


def normalised_pair(ground_truth: str, response: str) -> Optional[Pair]:
    """The pair the judge sees for one response, or ``None`` for a parse failure."""
    answer = extract_answer(response)
    if answer is None:
        return None
    return normalise_label(ground_truth), normalise_label(answer)


def pairs_to_judge(truths_and_responses: Iterable[tuple[str, Iterable[str]]],
                   pair_of: Callable[[str, str], Optional[Pair]] = normalised_pair) -> list[Pair]:
    """Distinct pairs (``pair_of(truth, response)``, normalised by default; None skipped), in first-seen order."""
    ordered: dict[Pair, None] = {}
    for truth, responses in truths_and_responses:
        for response in responses:
            pair = pair_of(truth, response)
            if pair is not None:
                ordered.setdefault(pair)
    return list(ordered)


def _pair_key(pair: Pair) -> str:
    return content_key(list(pair))


def category_label(verdict: Any) -> str:
    """What the protocol-1 stage stores of a verdict: its category label."""
    return verdict.category.label


async def run_judge_stage(
    pairs: list[Pair],
    judge: Judge,
    *,
    store_path: Path,
    chunk_size: int = 512,
    progress: bool = True,
    answer_of: Callable[[Any], Any] = category_label,
    desc: str = "judge",
) -> JudgeResult:
    """Ask about the pairs missing from ``store_path``; return the answers for all of them.

    ``answer_of`` reads the stored answer from a successful verdict (the category label by
    default; the LI stage stores the inclusion score).
    """
    store = JsonlStore(store_path)
    stored = store.load()
    result = JudgeResult(verdicts={})
    todo: list[Pair] = []
    for pair in pairs:
        record = stored.get(_pair_key(pair))
        if record is not None:
            result.verdicts[pair] = record["answer"]
        else:
            todo.append(pair)
    result.reused = len(result.verdicts)
    with tqdm(total=len(todo), desc=desc, unit="pair", disable=not progress) as bar:
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
            except TRANSPORT_ERRORS as error:  # one lost chunk must not end the evaluation; a bug must
                result.errors.update((p, f"{type(error).__name__}: {error}") for p in chunk)
                bar.update(len(chunk))
                continue
            records = []
            for pair, verdict in zip(chunk, verdicts):
                if verdict.ok:
                    answer = answer_of(verdict)
                    result.verdicts[pair] = answer
                    records.append({"key": _pair_key(pair), "gt": pair[0], "pred": pair[1],
                                    "answer": answer, "source": verdict.source})
                else:
                    result.errors[pair] = verdict.error or "unknown judge error"
            store.append(records)
            result.sent += len(chunk)
            bar.update(len(chunk))
    metrics = judge.pop_metrics()
    result.judge_metrics = {k: float(v) for k, v in metrics.items()} if metrics else {}
    return result
