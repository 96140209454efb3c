"""The evaluation run: predict -> judge -> score, then metrics.json, the report and the plots.

Layout of ``--out DIR``::

    DIR/metrics.json             every number, the definitions and how the run was made
    DIR/report.md                tables in the paper's layout
    DIR/samples.jsonl            one line per sample: answer and grade
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
from verl_ext.core.prompts import resolve_prompt_text
from verl_ext.data.prompt_file import read_prompt_file
from verl_ext.eval.backends import build_backend
from verl_ext.eval.backends.base import GenerationBackend
from verl_ext.eval.items import EvalDataError, EvalItem, read_eval_items
from verl_ext.eval.judging import JudgeResult, judge_identity, judge_stage_key, pairs_to_judge, run_judge_stage
from verl_ext.eval.model_source import fingerprint, resolve_model
from verl_ext.eval.plots import plot_category_bars, plot_spec_vs_corr
from verl_ext.eval.predict import PredictResult, predict_stage_key, run_predict_stage
from verl_ext.eval.report import render_report
from verl_ext.eval.results import rows_of
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.eval.scoring import grade_response, score
from verl_ext.judge.base import Judge


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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not self.data:
            raise ValueError("data: give at least one parquet file")
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"backend must be 'hf' or 'vllm', got {self.backend!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.judge_chunk_size < 1:
            raise ValueError(f"judge_chunk_size must be >= 1, got {self.judge_chunk_size}")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise ValueError(f"max_pixels must be >= 784, got {self.max_pixels}")
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
    judge: JudgeResult


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


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _write_samples(path: Path, items: Sequence[EvalItem], responses, verdicts) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for item in items:
            for k, response in enumerate(responses[item.image_sha256]):
                grade = grade_response(item.ground_truth, response, verdicts)
                handle.write(json.dumps({
                    "data_source": item.data_source, "index": item.index, "row": item.row, "sample": k,
                    "ground_truth": item.ground_truth, "answer": extract_answer(response),
                    "status": grade.status.value, "category": grade.category.label if grade.category else None,
                }, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


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
) -> tuple[dict, JudgeResult]:
    """The judge and score stages on given responses (what the benchmark and tests drive directly).

    ``judge=None`` builds one from ``judge_settings`` (``judge.factory.build_judge``) and
    closes it at the end, inside the same event loop that used it.
    """
    out = Path(out)
    identity = judge_identity(judge_settings)
    pairs = pairs_to_judge((item.ground_truth, responses[item.image_sha256]) for item in items)
    judge_path = out / "cache" / "judge" / f"{judge_stage_key(judge_settings)}.jsonl"
    own_judge = judge is None
    if own_judge:
        judge = _build_judge(judge_settings)
    try:
        judged = await run_judge_stage(pairs, judge, store_path=judge_path, chunk_size=judge_chunk_size,
                                       progress=progress)
    finally:
        if own_judge:
            await judge.aclose()

    # Scoring is pure and takes well under a second even for Food-101, so it is never cached:
    # a cached score could only ever be stale.
    metrics = score(items, responses, judged.verdicts, n)
    metrics["method"] = method
    metrics["run"] = {**(facts or {}), "judge": identity, "judge_stage": {
        "pairs": len(pairs), "sent": judged.sent, "reused": judged.reused, "errors": len(judged.errors),
        "stopped_early": judged.stopped_early, "client_metrics": judged.judge_metrics,
    }}
    if write_outputs:
        write_run_outputs(out, metrics)
        _write_samples(out / "samples.jsonl", items, responses, judged.verdicts)
    return metrics, judged


def judge_and_score(*args, **kwargs) -> tuple[dict, JudgeResult]:
    """Synchronous form of :func:`judge_and_score_async` (not for use inside a running event loop)."""
    return asyncio.run(judge_and_score_async(*args, **kwargs))


def write_run_outputs(out: Path, metrics: dict) -> dict[str, Path]:
    """metrics.json, report.md and the two plots of one run."""
    rows = rows_of(metrics, metrics.get("method"))
    plots = {
        "categories": plot_category_bars(rows, out / "plots" / "categories.png"),
        "spec_vs_corr": plot_spec_vs_corr(rows, out / "plots" / "spec_vs_corr.png"),
    }
    run = metrics.get("run", {})
    facts: dict[str, str] = {}
    model = run.get("model")
    if isinstance(model, dict):
        adapter = f" + LoRA adapter {model['adapter_path']}" if model.get("adapter_path") else ""
        facts["model"] = f"{model['base_path']}{adapter} ({model['layout']})"
    for key in ("backend", "prompt_variant"):
        if key in run:
            facts[key] = str(run[key])
    if "sampling" in run:
        facts["sampling"] = ", ".join(f"{k}={v}" for k, v in run["sampling"].items())
    if "data" in run:
        facts["data"] = ", ".join(run["data"])
    judge = {k: v for k, v in run.get("judge", {}).items() if v is not None}
    facts["judge"] = ", ".join(f"{k}={v}" for k, v in judge.items())
    warnings = []
    if not metrics.get("complete", True):
        warnings.append(f"{metrics['n_judge_errors']} samples have no verdict (judge errors); they are left out "
                        "of every metric. Re-run the same command to retry them.")
    report = render_report(rows, title=f"Evaluation: {metrics.get('method')}", facts=facts, warnings=warnings,
                           plots=[f"plots/{p.name}" for p in plots.values()])
    (out / "report.md").write_text(report, encoding="utf-8")
    _write_json(out / "metrics.json", metrics)
    return {"metrics": out / "metrics.json", "report": out / "report.md", **plots}


async def run_evaluation_async(
    config: EvalConfig,
    *,
    backend_factory: Optional[Callable[[], GenerationBackend]] = None,
    judge: Optional[Judge] = None,
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
        progress=config.progress,
    )
    metrics["run"]["seconds"] = round(time.time() - started, 3)
    _write_json(out / "metrics.json", metrics)
    return EvalOutcome(metrics, out, predicted, judged)


def run_evaluation(config: EvalConfig, **kwargs) -> EvalOutcome:
    """Synchronous form of :func:`run_evaluation_async` (what the CLI calls)."""
    return asyncio.run(run_evaluation_async(config, **kwargs))


def _build_judge(settings: Mapping[str, Any]) -> Judge:
    from verl_ext.judge.factory import build_judge

    return build_judge(dict(settings))
