"""Protocol 2 of the evaluation: the open-world metrics TI, LI, SS and CS, cached and resumable.

Two stages beside the judge stage, each run only when ``--metrics`` asks for its metrics:

* the **local stage** (TI, SS, CS) writes one record per distinct (reference, prediction)
  pair to ``cache/open_world/<key>.jsonl``, appended chunk by chunk. Within a chunk every
  distinct text (references, predictions, their concepts) is embedded once, in length-sorted
  batches, and every distinct prediction is parsed once; the models load only when there is
  work left. The key covers the metrics asked, the encoder files' fingerprint and dtype, the
  spaCy pipeline and its version, the library versions and the code.
* the **LI stage** is the judge stage with the inclusion task (``judge.inclusion``) against
  any OpenAI-compatible server, in ``cache/li/<key>.jsonl``; judge errors are counted,
  left out of LI and retried by the next run, as in protocol 1.

The prediction scored is the ``<answer>`` content (default) or the whole response
(``prediction="response"``, what the reference implementation scores for non-reasoning
models); a parse failure scores 0 on all four metrics (``core.open_world``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

from pydantic import Field
from tqdm import tqdm

from verl_ext.core.open_world import (
    OpenWorldTally,
    average_open_world,
    concept_candidates,
    concept_similarity,
    open_world_prediction,
    text_inclusion,
)
from verl_ext.eval.items import EvalItem
from verl_ext.eval.judging import JudgeResult, judge_identity, judge_stage_key, pairs_to_judge, run_judge_stage
from verl_ext.eval.store import JsonlStore, code_fingerprint, content_key, library_versions
from verl_ext.settings import Settings, SettingsError

Pair = tuple[str, str]
PROTOCOL_TWO = ("ti", "li", "ss", "cs")
METRIC_NAMES = ("judge",) + PROTOCOL_TWO
LOCAL_METRICS = ("ti", "ss", "cs")
REFERENCE_LI_JUDGE = "meta-llama/Llama-3.2-3B-Instruct"


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"judge,owc"`` -> ("judge", "ti", "li", "ss", "cs"); ``owc`` stands for all of protocol 2."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in (n.strip().lower() for n in names if n.strip()):
        expanded = PROTOCOL_TWO if name == "owc" else (name,)
        for metric in expanded:
            if metric not in METRIC_NAMES:
                raise SettingsError(f"--metrics: unknown metric {name!r}; choose from {['owc', *METRIC_NAMES]}")
            if metric not in out:
                out.append(metric)
    if not out:
        raise SettingsError("--metrics: name at least one of judge, owc, ti, li, ss, cs")
    return tuple(m for m in METRIC_NAMES if m in out)


class OpenWorldSettings(Settings):
    """How protocol 2 runs; the LI judge's own settings are passed beside it."""

    prediction: Literal["answer", "response"] = "answer"
    encoder: Optional[str] = None
    spacy_model: Optional[str] = None
    device: Optional[str] = None
    batch_size: int = Field(256, ge=1, strict=True)
    chunk_size: int = Field(4096, ge=1, strict=True)


def distinct_pairs(items: Sequence[EvalItem], responses: Mapping[str, Sequence[str]], source: str) -> list[Pair]:
    """Distinct (reference, prediction) pairs of the parsed responses, in first-seen order."""
    def pair_of(reference: str, response: str) -> Optional[Pair]:
        prediction = open_world_prediction(response, source)
        return None if prediction is None else (reference, prediction)

    return pairs_to_judge(((i.ground_truth, responses[i.image_sha256]) for i in items), pair_of)


@dataclass
class LocalResult:
    """Per pair {"ti", "ss", "cs"} (those asked), what this run computed, and the models' identity."""

    scores: dict[Pair, dict[str, float]]
    computed: int = 0
    reused: int = 0
    facts: dict[str, Any] = field(default_factory=dict)


class _Models:
    """The encoder and the concept parser, loaded on first use only."""

    def __init__(self, settings: OpenWorldSettings):
        self.settings = settings
        self._encoder = self._parser = None

    @property
    def encoder(self):
        if self._encoder is None:
            from verl_ext.eval.embeddings import SentenceEncoder

            s = self.settings
            self._encoder = SentenceEncoder(s.encoder, device=s.device, batch_size=s.batch_size)
        return self._encoder

    @property
    def parser(self):
        if self._parser is None:
            from verl_ext.eval.concepts import ConceptParser

            self._parser = ConceptParser(self.settings.spacy_model, batch_size=self.settings.batch_size)
        return self._parser


def _device(settings: OpenWorldSettings) -> str:
    import torch

    return settings.device or ("cuda" if torch.cuda.is_available() else "cpu")


def local_stage_identity(metrics: Sequence[str], settings: OpenWorldSettings, memo_path: Path) -> dict:
    """Everything the local stage's results depend on (its key is the content hash of this)."""
    asked = [m for m in LOCAL_METRICS if m in metrics]
    identity: dict[str, Any] = {"metrics": asked}
    modules, distributions = ["verl_ext.core.open_world", "verl_ext.eval.open_world"], []
    if "ss" in asked or "cs" in asked:
        from verl_ext.eval.embeddings import default_encoder_path, encoder_dtype_name
        from verl_ext.eval.model_source import ModelSource, fingerprint

        path = Path(settings.encoder) if settings.encoder else default_encoder_path()
        if not path.is_dir():
            raise SettingsError(f"--encoder {str(path)!r}: not a directory")
        device = _device(settings)
        identity["encoder"] = {"path": str(path), "fingerprint": fingerprint(ModelSource(path, layout="encoder"),
                                                                             memo_path),
                               "dtype": encoder_dtype_name(device)}
        modules.append("verl_ext.eval.embeddings")
        distributions += ["torch", "transformers"]
    if "cs" in asked:
        from verl_ext.eval.concepts import pipeline_identity

        identity["spacy"] = pipeline_identity(settings.spacy_model)
        modules.append("verl_ext.eval.concepts")
    identity["code"] = code_fingerprint(*modules)
    identity["libraries"] = library_versions(*distributions)
    return identity


def _stage_key(identity: Mapping[str, Any]) -> str:
    keyed = {k: v for k, v in identity.items() if k != "encoder"}
    if "encoder" in identity:  # the same files elsewhere give the same embeddings
        keyed["encoder"] = {k: v for k, v in identity["encoder"].items() if k != "path"}
    return content_key({"stage": "open_world", **keyed})


def _score_chunk(chunk: Sequence[Pair], asked: Sequence[str], models: _Models) -> list[dict]:
    records = [{"key": content_key(list(pair)), "ref": pair[0], "pred": pair[1]} for pair in chunk]
    if "ti" in asked:
        for record in records:
            record["ti"] = text_inclusion(record["ref"], record["pred"])
    if "ss" not in asked and "cs" not in asked:
        return records
    predictions = list(dict.fromkeys(pred for _, pred in chunk))
    concepts: dict[str, list[str]] = {pred: [pred] for pred in predictions}
    if "cs" in asked:
        for pred, (chunks, entities) in zip(predictions, models.parser.spans(predictions)):
            concepts[pred] = concept_candidates(pred, chunks, entities)
    texts = list(dict.fromkeys([ref for ref, _ in chunk] + [c for cs in concepts.values() for c in cs]))
    vectors = dict(zip(texts, models.encoder.encode(texts)))
    for record in records:
        reference = vectors[record["ref"]]
        if "ss" in asked:
            record["ss"] = float(reference @ vectors[record["pred"]])
        if "cs" in asked:
            record["cs"] = concept_similarity([float(reference @ vectors[c]) for c in concepts[record["pred"]]])
    return records


def _encoder_check(identity: Mapping[str, Any], models: _Models, checks_path: Path) -> Optional[dict]:
    """The encoder's verification, done once per encoder fingerprint and remembered beside the cache."""
    if "encoder" not in identity:
        return None
    checks = json.loads(checks_path.read_text(encoding="utf-8")) if checks_path.is_file() else {}
    name = f"{identity['encoder']['fingerprint']}|{identity['encoder']['dtype']}"
    if name not in checks:
        checks[name] = models.encoder.check().as_dict()
        checks_path.parent.mkdir(parents=True, exist_ok=True)
        checks_path.write_text(json.dumps(checks, indent=2), encoding="utf-8")
    return checks[name]


def run_local_stage(pairs: Sequence[Pair], metrics: Sequence[str], settings: OpenWorldSettings, *, out: Path,
                    progress: bool = True) -> LocalResult:
    """TI, SS and CS (those asked) for the pairs missing from the stage file; all pairs' scores back."""
    identity = local_stage_identity(metrics, settings, out / "cache" / "fingerprints.json")
    key = _stage_key(identity)
    store = JsonlStore(out / "cache" / "open_world" / f"{key}.jsonl")
    stored = store.load()
    asked = identity["metrics"]
    result = LocalResult(scores={})
    todo = []
    for pair in pairs:
        record = stored.get(content_key(list(pair)))
        if record is None:
            todo.append(pair)
        else:
            result.scores[pair] = {m: record[m] for m in asked}
    result.reused = len(result.scores)
    models = _Models(settings)
    with tqdm(total=len(todo), desc="open-world", unit="pair", disable=not progress) as bar:
        for start in range(0, len(todo), settings.chunk_size):
            records = _score_chunk(todo[start:start + settings.chunk_size], asked, models)
            store.append(records)
            result.scores.update(((r["ref"], r["pred"]), {m: r[m] for m in asked}) for r in records)
            result.computed += len(records)
            bar.update(len(records))
    check = _encoder_check(identity, models, out / "cache" / "open_world" / "encoder_checks.json")
    result.facts = {"key": key, **{k: v for k, v in identity.items() if k not in ("code",)},
                    "encoder_check": check, "pairs": len(pairs), "computed": result.computed, "reused": result.reused}
    return result


async def run_li_stage(pairs: Sequence[Pair], judge_settings: Mapping[str, Any], *, out: Path, judge: Any = None,
                       chunk_size: int = 512, progress: bool = True) -> tuple[JudgeResult, dict]:
    """LLM inclusion for the pairs missing from its stage file, through the judge client."""
    from verl_ext.judge.inclusion import INCLUSION

    key = judge_stage_key(judge_settings, INCLUSION)
    own_judge = judge is None
    if own_judge:
        from verl_ext.judge.factory import build_judge

        judge = build_judge(dict(judge_settings), INCLUSION)
    try:
        result = await run_judge_stage(list(pairs), judge, store_path=out / "cache" / "li" / f"{key}.jsonl",
                                       chunk_size=chunk_size, progress=progress, answer_of=lambda v: v.score,
                                       desc="LI judge")
    finally:
        if own_judge:
            await judge.aclose()
    facts = {"key": key, "judge": judge_identity(judge_settings, INCLUSION), "pairs": len(pairs), "sent": result.sent,
             "reused": result.reused, "errors": len(result.errors), "stopped_early": result.stopped_early}
    return result, facts


def score_open_world(items: Sequence[EvalItem], responses: Mapping[str, Sequence[str]], metrics: Sequence[str],
                     source: str, local: LocalResult, li: Optional[JudgeResult]) -> tuple[dict, dict]:
    """Per-dataset means of the metrics asked, and their unweighted group averages."""
    from verl_ext.core.datasets import DATASET_GROUPS

    asked = [m for m in PROTOCOL_TWO if m in metrics]
    tallies: "OrderedDict[str, OpenWorldTally]" = OrderedDict()
    for item in items:
        tally = tallies.setdefault(item.data_source, OpenWorldTally())
        for response in responses[item.image_sha256]:
            prediction = open_world_prediction(response, source)
            if prediction is None:
                tally.add_parse_failure()
                continue
            pair = (item.ground_truth, prediction)
            scores = local.scores.get(pair, {})
            inclusion = (li.verdicts.get(pair) if li is not None else 0.0)
            tally.add(scores.get("ti", 0.0), scores.get("ss", 0.0), scores.get("cs", 0.0), inclusion)
    datasets = {name: tally.summary(asked) for name, tally in tallies.items()}
    groups = {}
    for group, members in DATASET_GROUPS.items():
        present = [m for m in members if m in datasets]
        if present:
            groups[group] = {**average_open_world(datasets, present), "datasets": present}
    return datasets, groups


def open_world_warnings(facts: Mapping[str, Any]) -> list[str]:
    """What makes a run's protocol-2 numbers differ from the reference setup, in words."""
    warnings = []
    local = facts.get("local_stage", {})
    check = local.get("encoder_check")
    if "encoder" in local and (check is None or not check.get("verified")):
        warnings.append("SS/CS: the encoder at " + local["encoder"]["path"] + (
            " was not verified in this run" if check is None else
            " does not reproduce the published sentence-transformers/all-MiniLM-L6-v2") + "; SS and CS may not be "
            "comparable with the reference")
    spacy = local.get("spacy")
    if spacy and not spacy.get("is_reference"):
        warnings.append(f"CS: concepts were parsed with {spacy['pipeline']} {spacy['version']}, not en_core_web_lg "
                        "(python -m spacy download en_core_web_lg); CS is not comparable with the reference")
    li = facts.get("li_stage")
    if li and REFERENCE_LI_JUDGE.split("/")[-1].lower() not in str(li["judge"].get("model") or "").lower():
        warnings.append(f"LI: judged by {li['judge'].get('model') or li['judge'].get('impl')}; the reference "
                        f"judge is {REFERENCE_LI_JUDGE}")
    return warnings


async def evaluate_open_world(
    items: Sequence[EvalItem],
    responses: Mapping[str, Sequence[str]],
    *,
    metrics: Sequence[str],
    settings: OpenWorldSettings,
    li_settings: Optional[Mapping[str, Any]],
    out: Path,
    li_judge: Any = None,
    chunk_size: int = 512,
    progress: bool = True,
) -> dict:
    """Both protocol-2 stages (the local one in a worker thread while LI waits on the network), then scores."""
    import asyncio

    pairs = distinct_pairs(items, responses, settings.prediction)
    facts: dict[str, Any] = {"metrics": [m for m in PROTOCOL_TWO if m in metrics], "prediction": settings.prediction}
    local_job = None
    if any(m in LOCAL_METRICS for m in metrics):
        local_job = asyncio.get_running_loop().run_in_executor(
            None, lambda: run_local_stage(pairs, metrics, settings, out=out, progress=progress))
    li = None
    if "li" in metrics:
        if li_settings is None and li_judge is None:
            raise SettingsError("LI needs a judge: pass --li-judge-url (or --judge-url) or leave li out of --metrics")
        li, facts["li_stage"] = await run_li_stage(pairs, li_settings or {}, out=out, judge=li_judge,
                                                   chunk_size=chunk_size, progress=progress)
    local = await local_job if local_job is not None else LocalResult(scores={})
    if local_job is not None:
        facts["local_stage"] = local.facts
    datasets, groups = score_open_world(items, responses, metrics, settings.prediction, local, li)
    facts["warnings"] = open_world_warnings(facts)
    return {"datasets": datasets, "groups": groups, "facts": facts,
            "scores": local.scores, "li": li.verdicts if li is not None else {},
            "n_li_errors": len(li.errors) if li is not None else 0}
