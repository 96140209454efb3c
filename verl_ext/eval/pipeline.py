"""The evaluation run: predict -> judge -> score, then metrics.json, the report and the plots.

Layout of ``--out DIR``::

    DIR/metrics.json             every number, the definitions and how the run was made
    DIR/report.md                tables in the paper's layout
    DIR/samples.jsonl            one line per sample: response, answer and grade
    DIR/plots/categories.png     stacked category shares per dataset and method
    DIR/plots/spec_vs_corr.png   specificity vs correctness with HM iso-curves
    DIR/cache/predict/<key>.jsonl, DIR/cache/judge/<key>.jsonl

Every cache file is named by the hash of its stage's inputs, so a rerun of the same command
resumes where it stopped, and a changed input (another model, prompt or judge) starts a
fresh file next to the old one instead of mixing results.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from verl_ext.core.answer import extract_answer
from verl_ext.core.open_world import open_world_prediction
from verl_ext.core.prompts import resolve_prompt_text
from verl_ext.data.prompt_file import read_prompt_file
from verl_ext.eval.backends import build_backend
from verl_ext.eval.backends.base import GenerationBackend
from verl_ext.eval.items import EvalDataError, EvalItem, read_eval_items
from verl_ext.eval.judging import JudgeResult, judge_identity, judge_stage_key, pairs_to_judge, run_judge_stage
from verl_ext.eval.model_source import fingerprint, resolve_model
from verl_ext.eval.open_world import PROTOCOL_TWO, OpenWorldSettings, evaluate_open_world, parse_metrics
from verl_ext.eval.predict import PredictResult, predict_stage_key, run_predict_stage
from verl_ext.eval.run_outputs import write_json, write_run_outputs
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.eval.scoring import OPEN_WORLD_DEFINITIONS, grade_response, score
from verl_ext.judge.base import Judge
from verl_ext.settings import SettingsError


@dataclass
class EvalConfig:
    """Everything one evaluation run needs; validated when built."""

    model: str
    data: Sequence[str]
    out: Path
    judge: Mapping[str, Any]
    backend: str = "hf"
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    prompt_variant: str = "general"
    method: Optional[str] = None
    base_model: Optional[str] = None
    batch_size: int = 1
    max_pixels: Optional[int] = None
    judge_chunk_size: int = 512
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True
    #: Protocols to compute (``open_world.parse_metrics``): ``judge`` and/or ``ti``, ``li``, ``ss``, ``cs``.
    metrics: Sequence[str] = ("judge",)
    open_world: OpenWorldSettings = field(default_factory=OpenWorldSettings)
    #: Settings of the LI judge (same keys as ``judge``); needed when ``li`` is in ``metrics``.
    li_judge: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.metrics = parse_metrics(self.metrics)
        if not self.data:
            raise SettingsError("data: give at least one parquet file")
        if self.backend not in ("hf", "vllm"):
            raise SettingsError(f"backend must be 'hf' or 'vllm', got {self.backend!r}")
        if self.batch_size < 1:
            raise SettingsError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.judge_chunk_size < 1:
            raise SettingsError(f"judge_chunk_size must be >= 1, got {self.judge_chunk_size}")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise SettingsError(f"max_pixels must be >= 784, got {self.max_pixels}")
        self.prompt_text()  # a misspelt variant name fails here, before any data is read

    def prompt_text(self) -> str:
        """The policy prompt: a variant name, custom text, or ``file://path`` (``core.prompts``)."""
        return resolve_prompt_text(self.prompt_variant, read_file=read_prompt_file)

    def method_name(self) -> str:
        if self.method:
            return self.method
        path = Path(self.model).resolve()
        parts = [p for p in path.parts[-3:] if p not in ("actor", "huggingface", "lora_adapter")]
        return parts[-1] if parts else path.name


@dataclass
class EvalOutcome:
    metrics: dict
    out: Path
    predict: Optional[PredictResult]
    judge: Optional[JudgeResult]


def read_all_items(paths: Sequence[str]) -> list[EvalItem]:
    """Items of every file; one data source may come from one file only (no silent merging)."""
    items: list[EvalItem] = []
    owner: dict[str, str] = {}
    for path in paths:
        for item in read_eval_items(path):
            first = owner.setdefault(item.data_source, item.source_file)
            if first != item.source_file:
                raise EvalDataError(
                    f"{item.source_file}: row {item.row}: field 'data_source': {item.data_source!r} also comes from "
                    f"{first}; evaluate each split of a dataset in its own run"
                )
            items.append(item)
    return items


def _write_samples(path: Path, items: Sequence[EvalItem], responses, verdicts, owc: Optional[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    source = owc["facts"]["prediction"] if owc else "answer"
    with tmp.open("w", encoding="utf-8") as handle:
        for item in items:
            for k, response in enumerate(responses[item.image_sha256]):
                line = {"data_source": item.data_source, "index": item.index, "row": item.row, "sample": k,
                        "ground_truth": item.ground_truth, "answer": extract_answer(response), "response": response}
                if verdicts is not None:
                    grade = grade_response(item.ground_truth, response, verdicts)
                    line.update(status=grade.status.value, category=grade.category.label if grade.category is not None else None)
                if owc is not None:
                    line["open_world"] = _sample_open_world(item.ground_truth, response, source, owc)
                handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


def _sample_open_world(reference: str, response: str, source: str, owc: dict) -> Optional[dict]:
    """One sample's protocol-2 scores (None for a parse failure; li None for an LI judge error)."""
    prediction = open_world_prediction(response, source)
    if prediction is None:
        return None
    pair = (reference, prediction)
    scores = dict(owc["scores"].get(pair, {}))
    if "li" in owc["facts"]["metrics"]:
        scores["li"] = owc["li"].get(pair)
    return scores


async def judge_and_score_async(
    items: Sequence[EvalItem],
    responses: Mapping[str, Sequence[str]],
    *,
    n: int,
    judge: Optional[Judge],
    judge_settings: Mapping[str, Any],
    out: Path,
    method: str,
    facts: Optional[dict] = None,
    judge_chunk_size: int = 512,
    progress: bool = True,
    write_outputs: bool = True,
    metrics: Sequence[str] = ("judge",),
    open_world: Optional[OpenWorldSettings] = None,
    li_settings: Optional[Mapping[str, Any]] = None,
    li_judge: Any = None,
) -> tuple[dict, Optional[JudgeResult]]:
    """The judge, open-world and score stages on given responses (what benchmarks and tests drive).

    ``metrics`` picks the protocols (``open_world.parse_metrics``): ``judge`` is protocol 1,
    ``ti``/``li``/``ss``/``cs`` protocol 2. ``judge=None`` builds the judge from
    ``judge_settings`` (``judge.factory.build_judge``) and closes it at the end, inside the
    same event loop that used it; ``li_judge`` / ``li_settings`` likewise for LI.
    """
    out = Path(out)
    run = {**(facts or {}), "metrics": list(metrics)}
    judged = None
    if "judge" in metrics:
        judged, run["judge"], run["judge_stage"] = await _protocol_one(
            items, responses, judge, judge_settings, out, judge_chunk_size, progress)
    # Scoring is pure and takes well under a second even for Food-101, so it is never cached:
    # a cached score could only ever be stale.
    result = score(items, responses, judged.verdicts if judged is not None else None, n)
    owc = None
    if any(m in PROTOCOL_TWO for m in metrics):
        owc = await evaluate_open_world(items, responses, metrics=metrics, settings=open_world or OpenWorldSettings(),
                                        li_settings=li_settings, li_judge=li_judge, out=out,
                                        chunk_size=judge_chunk_size, progress=progress)
        for name, summary in owc["datasets"].items():
            result["datasets"][name]["open_world"] = summary
        result["groups"]["open_world"] = owc["groups"]
        result["open_world_definitions"] = OPEN_WORLD_DEFINITIONS
        run["open_world"] = owc["facts"]
        result["n_li_errors"] = owc["n_li_errors"]
        result["complete"] = result["complete"] and owc["n_li_errors"] == 0
    result["method"] = method
    result["run"] = run
    if write_outputs:
        write_run_outputs(out, result)
        _write_samples(out / "samples.jsonl", items, responses, judged.verdicts if judged else None, owc)
    return result, judged


async def _protocol_one(items, responses, judge, judge_settings, out, chunk_size, progress):
    pairs = pairs_to_judge((item.ground_truth, responses[item.image_sha256]) for item in items)
    judge_path = out / "cache" / "judge" / f"{judge_stage_key(judge_settings)}.jsonl"
    own_judge = judge is None
    if own_judge:
        judge = _build_judge(judge_settings)
    try:
        judged = await run_judge_stage(pairs, judge, store_path=judge_path, chunk_size=chunk_size, progress=progress)
    finally:
        if own_judge:
            await judge.aclose()
    stage = {"pairs": len(pairs), "sent": judged.sent, "reused": judged.reused, "errors": len(judged.errors),
             "stopped_early": judged.stopped_early, "client_metrics": judged.judge_metrics}
    return judged, judge_identity(judge_settings), stage


def judge_and_score(*args, **kwargs) -> tuple[dict, JudgeResult]:
    """Synchronous form of :func:`judge_and_score_async` (not for use inside a running event loop)."""
    return asyncio.run(judge_and_score_async(*args, **kwargs))


async def run_evaluation_async(
    config: EvalConfig,
    *,
    backend_factory: Optional[Callable[[], GenerationBackend]] = None,
    judge: Optional[Judge] = None,
    li_judge: Any = None,
) -> EvalOutcome:
    """All three stages; finished work on disk is reused, so a rerun resumes."""
    started = time.time()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    items = read_all_items(config.data)
    prompt_text = config.prompt_text()
    source = resolve_model(config.model, config.base_model)
    model_fp = fingerprint(source, out / "cache" / "fingerprints.json")
    key = predict_stage_key(model_fp, config.backend, config.sampling, prompt_text, config.max_pixels)
    if backend_factory is None:
        options = dict(config.backend_options)
        options.setdefault("max_pixels", config.max_pixels)

        def backend_factory():
            return build_backend(config.backend, source, config.sampling, **options)

    predicted = run_predict_stage(
        items, backend_factory, store_path=out / "cache" / "predict" / f"{key}.jsonl",
        settings=config.sampling, prompt_text=prompt_text, batch_size=config.batch_size, progress=config.progress,
    )
    facts = {
        "model": source.describe(), "model_fingerprint": model_fp, "backend": config.backend,
        "sampling": config.sampling.as_dict(), "prompt_variant": config.prompt_variant,
        "data": [str(p) for p in config.data],
        "predict_stage": {"key": key, "generated": predicted.generated, "reused": predicted.reused},
    }
    metrics, judged = await judge_and_score_async(
        items, predicted.responses, n=config.sampling.n, judge=judge, judge_settings=config.judge, out=out,
        method=config.method_name(), facts=facts, judge_chunk_size=config.judge_chunk_size,
        progress=config.progress, metrics=config.metrics, open_world=config.open_world,
        li_settings=config.li_judge, li_judge=li_judge,
    )
    metrics["run"]["seconds"] = round(time.time() - started, 3)
    write_json(out / "metrics.json", metrics)
    return EvalOutcome(metrics, out, predicted, judged)


def run_evaluation(config: EvalConfig, **kwargs) -> EvalOutcome:
    """Synchronous form of :func:`run_evaluation_async` (what the CLI calls)."""
    return asyncio.run(run_evaluation_async(config, **kwargs))


def _build_judge(settings: Mapping[str, Any]) -> Judge:
    from verl_ext.judge.factory import build_judge

    return build_judge(dict(settings))
