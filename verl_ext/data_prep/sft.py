"""The SFT parquet: the RL rows of a split, each with an assistant turn that is its target.

verl 0.9's SFT trainer (``verl.trainer.sft_trainer``) reads rows through its
``MultiTurnSFTDataset`` (``verl/utils/dataset/multiturn_sft_dataset.py``): a ``messages``
column (the chat), an ``images`` column whose items replace the ``<image>`` placeholders of the
messages in order, and a loss on the assistant turns only. The rows here are made from the
parquet file ``data_prep/<dataset>.py`` wrote for RL, never from the dataset layout a second
time: the same images (bytes unchanged), the same prompt, the same ``data_source``,
``reward_model`` and ``extra_info``, so an SFT run and an RL run on
``train_sub3000_seed42.parquet`` train on exactly the same 3,000 images.

The target keeps the policy's format (``core.prompts.policy_response``) and is made in one of
two ways (the paper does not say how its SFT targets were made; docs/recipes.md discusses what
each means for comparing SFT with the RL methods):

- ``label``: the ground-truth class name after a short fixed reasoning line,
  ``<think>{FIXED_REASONING}</think><answer>{ground truth}</answer>``; one row per image.
- ``rejection``: the base model's own responses on these images that the judge graded
  specific or more specific (``Category.is_specific``), read from the ``samples.jsonl`` of an
  evaluation run (``python -m verl_ext.eval --data <this RL file> --n K --temperature T``);
  up to ``per_image`` rows per image (the lowest sample indices), and an image without an
  accepted response is left out and counted.

Output: the parquet file plus ``<stem>.summary.json`` (what was kept, left out and why).

CLI::

    python -m verl_ext.data_prep.sft --from DATA/cub200/train_sub3000_seed42.parquet --target label
    python -m verl_ext.data_prep.sft --from DATA/cub200/train_sub3000_seed42.parquet --target rejection \\
        --rollouts runs/sft_rollouts [--per-image 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..core.categories import try_parse_category
from ..core.grades import GradeStatus
from ..core.prompts import IMAGE_PLACEHOLDER, policy_response, resolve_prompt_text
from ..data.prompt_file import read_prompt_file
from .download import file_digest
from .errors import DataPrepError
from .writer import ROW_SCHEMA, StreamingParquetWriter

TARGET_LABEL = "label"
TARGET_REJECTION = "rejection"
TARGETS = (TARGET_LABEL, TARGET_REJECTION)

#: The reasoning line of every ``label`` target: the same for every image, so that the only
#: thing the targets teach beyond the format is the label.
FIXED_REASONING = "I look at the distinctive visual features and name the most specific category they show."

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SFT_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(_MESSAGE)),
        ROW_SCHEMA.field("images"),
        ROW_SCHEMA.field("data_source"),
        ROW_SCHEMA.field("reward_model"),
        ROW_SCHEMA.field("extra_info"),
        # where the target came from: the mode, and for rejection the sample index and its grade
        ("sft", pa.struct([("target", pa.string()), ("sample", pa.int64()), ("category", pa.string())])),
    ]
)
_RL_COLUMNS = ("data_source", "prompt", "images", "reward_model", "extra_info")
_BATCH_ROWS = 64


class SftDataError(DataPrepError):
    """An RL parquet row or an evaluation sample the SFT parquet cannot be built from."""


@dataclass
class SftResult:
    """What one SFT file holds; printed at the end and saved as ``<stem>.summary.json``."""

    source: str
    source_sha256: str
    output: str
    target: str
    source_rows: int = 0
    rows: int = 0
    images: int = 0
    images_without_target: int = 0
    per_image: Optional[int] = None
    reasoning: Optional[str] = None
    rollouts: Optional[dict] = None
    sample_status: dict = field(default_factory=dict)
    samples_outside_source: int = 0
    seconds: float = 0.0


# ------------------------------------------------------------------------- reading the RL rows
def _rl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(row number, row) of an RL parquet in the data_prep schema, streamed."""
    parquet = pq.ParquetFile(path)
    missing = [c for c in _RL_COLUMNS if c not in parquet.schema_arrow.names]
    if missing:
        raise SftDataError(f"{path}: missing column(s) {missing}; expected a parquet file written by data_prep/<dataset>.py")
    row = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=list(_RL_COLUMNS)):
        for record in batch.to_pylist():
            yield row, record
            row += 1


def _row_key(path: Path, row: int, record: dict) -> tuple[str, int]:
    """(data_source, extra_info.index): how evaluation samples name the image of a row."""
    extra = record.get("extra_info") or {}
    if not record.get("data_source") or not isinstance(extra.get("index"), int):
        raise SftDataError(f"{path}: row {row}: needs data_source and extra_info.index (the data_prep schema)")
    return record["data_source"], extra["index"]


def _prompt_text(path: Path, row: int, record: dict) -> str:
    """The text of the row's single user turn after its ``<image>``."""
    prompt = record.get("prompt") or []
    if len(prompt) != 1 or prompt[0].get("role") != "user" or not str(prompt[0].get("content", "")).startswith(IMAGE_PLACEHOLDER):
        raise SftDataError(f"{path}: row {row}: field 'prompt' must be one user message starting with {IMAGE_PLACEHOLDER!r}")
    return prompt[0]["content"][len(IMAGE_PLACEHOLDER):]


def _ground_truth(path: Path, row: int, record: dict) -> str:
    truth = (record.get("reward_model") or {}).get("ground_truth")
    if not isinstance(truth, str) or not truth.strip():
        raise SftDataError(f"{path}: row {row}: field 'reward_model.ground_truth' is missing or empty")
    return truth.strip()


# ------------------------------------------------------------------------- reading the rollouts
@dataclass
class Rollouts:
    """The accepted responses per image of one evaluation run, and what the run was."""

    run_dir: Path
    prompt_text: str
    facts: dict
    accepted: dict[tuple[str, int], list[tuple[int, str, str]]]
    ground_truths: dict[tuple[str, int], str]
    status: dict[str, int]


def _sample_status(line: dict) -> str:
    status = line.get("status")
    if status == GradeStatus.JUDGED.value:
        category = try_parse_category(line.get("category"))
        return category.label if category is not None else "unknown category"
    return str(status)


def read_rollouts(run_dir: Path, per_image: int) -> Rollouts:
    """The specific-or-better responses of an evaluation run, at most ``per_image`` per image.

    Reads ``metrics.json`` (the prompt the responses answer) and streams ``samples.jsonl``.
    """
    run_dir = Path(run_dir)
    metrics_path, samples_path = run_dir / "metrics.json", run_dir / "samples.jsonl"
    for path in (metrics_path, samples_path):
        if not path.is_file():
            raise SftDataError(f"{path}: missing; --rollouts must be the --out folder of a finished "
                               "'python -m verl_ext.eval --metrics judge' run")
    run = json.loads(metrics_path.read_text(encoding="utf-8")).get("run", {})
    try:
        prompt_text = resolve_prompt_text(run.get("prompt_variant") or "", read_file=read_prompt_file)
    except ValueError as error:
        raise SftDataError(f"{metrics_path}: field 'run.prompt_variant': {error}") from error
    accepted: dict[tuple[str, int], list[tuple[int, str, str]]] = {}
    truths: dict[tuple[str, int], str] = {}
    status: dict[str, int] = {}
    with samples_path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{samples_path}: line {number}"
            try:
                line = json.loads(text)
            except json.JSONDecodeError as error:
                raise SftDataError(f"{where}: not JSON ({error.msg})") from error
            if "status" not in line:
                raise SftDataError(f"{where}: no 'status'; the evaluation ran without the judge (--metrics judge)")
            if "response" not in line:
                raise SftDataError(f"{where}: no 'response' (an older evaluation); re-run the same evaluation "
                                   "command: its cached responses and verdicts are reused and samples.jsonl is rewritten")
            key = (line.get("data_source"), line.get("index"))
            if truths.setdefault(key, line.get("ground_truth")) != line.get("ground_truth"):
                raise SftDataError(f"{where}: {key} has two ground truths ({truths[key]!r}, {line.get('ground_truth')!r})")
            outcome = _sample_status(line)
            status[outcome] = status.get(outcome, 0) + 1
            category = try_parse_category(line.get("category")) if line["status"] == GradeStatus.JUDGED.value else None
            if category is not None and category.is_specific:
                kept = accepted.setdefault(key, [])
                kept.append((int(line["sample"]), line["response"], category.label))
                kept.sort()
                del kept[per_image:]
    facts = {"run_dir": str(run_dir), "prompt_variant": run.get("prompt_variant"), "sampling": run.get("sampling"),
             "model": run.get("model"), "judge": run.get("judge"), "data": run.get("data")}
    return Rollouts(run_dir, prompt_text, facts, accepted, truths, status)


# ------------------------------------------------------------------------- the rows
def _sft_row(record: dict, target: str, sample: Optional[int], category: Optional[str]) -> dict[str, Any]:
    mode = TARGET_REJECTION if sample is not None else TARGET_LABEL
    return {
        "messages": [*record["prompt"], {"role": "assistant", "content": target}],
        "images": record["images"],
        "data_source": record["data_source"],
        "reward_model": record["reward_model"],
        "extra_info": record["extra_info"],
        "sft": {"target": mode, "sample": sample, "category": category},
    }


def default_output(source: Path, target: str) -> Path:
    """``<stem>.sft_<target>.parquet`` next to the RL file."""
    return source.with_name(f"{source.stem}.sft_{target}.parquet")


def build_sft_parquet(
    source: Path,
    *,
    target: str,
    output: Optional[Path] = None,
    rollouts: Optional[Path] = None,
    per_image: int = 1,
    reasoning: str = FIXED_REASONING,
    progress: bool = True,
) -> SftResult:
    """Write the SFT parquet for the RL parquet ``source``; raises :class:`SftDataError` on bad input."""
    started = time.perf_counter()
    source = Path(source)
    if target not in TARGETS:
        raise SftDataError(f"--target must be one of {list(TARGETS)}, got {target!r}")
    if target == TARGET_REJECTION and rollouts is None:
        raise SftDataError("--target rejection needs --rollouts RUN_DIR (an evaluation of the base model on this file)")
    if per_image < 1:
        raise SftDataError(f"--per-image must be at least 1, got {per_image}")
    if "</think>" in reasoning or not reasoning.strip():
        raise SftDataError("--reasoning must be a non-empty line without '</think>'")
    if not source.is_file():
        raise SftDataError(f"{source}: no such parquet file (write it with data_prep/<dataset>.py first)")
    output = Path(output) if output else default_output(source, target)
    if output.resolve() == source.resolve():
        raise SftDataError(f"{output}: the SFT file would overwrite its RL source")
    found = read_rollouts(rollouts, per_image) if target == TARGET_REJECTION else None
    result = SftResult(str(source), file_digest(source, "sha256"), str(output), target,
                       per_image=per_image if found else None, reasoning=None if found else reasoning,
                       rollouts=found.facts if found else None, sample_status=found.status if found else {})
    seen: set[tuple[str, int]] = set()
    appended = 0
    with StreamingParquetWriter(output, schema=SFT_SCHEMA) as writer:
        for row, record in tqdm(_rl_rows(source), desc=f"sft/{output.name}", unit="img", disable=not progress):
            key, truth, prompt = _row_key(source, row, record), _ground_truth(source, row, record), _prompt_text(source, row, record)
            if key in seen:
                raise SftDataError(f"{source}: row {row}: {key} appears twice")
            seen.add(key)
            result.source_rows += 1
            if found is None:
                writer.append(_sft_row(record, policy_response(reasoning, truth), None, None))
                appended += 1
                result.images += 1
                continue
            _check_rollouts_cover(found, source, row, key, truth, prompt)
            kept = found.accepted.get(key, [])
            for sample, response, category in kept:
                writer.append(_sft_row(record, response, sample, category))
            appended += len(kept)
            result.images += bool(kept)
            result.images_without_target += not kept
        if found is not None:
            result.samples_outside_source = sum(1 for key in found.ground_truths if key not in seen)
            if appended == 0:
                raise SftDataError(f"{found.run_dir}: no response of any image was graded specific or more specific "
                                   f"(samples: {found.status}); nothing to train on")
    result.rows = writer.rows_written
    if result.rows == 0:
        raise SftDataError(f"{source}: the file has no rows")
    result.seconds = round(time.perf_counter() - started, 3)
    Path(f"{output.with_suffix('')}.summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


def _check_rollouts_cover(found: Rollouts, source: Path, row: int, key: tuple[str, int], truth: str, prompt: str) -> None:
    """The evaluation must have sampled this very image, with this ground truth, for this prompt."""
    if prompt != found.prompt_text:
        raise SftDataError(
            f"{source}: row {row}: its prompt differs from the one the rollouts in {found.run_dir} answer "
            f"(prompt variant {found.facts['prompt_variant']!r}); their targets would answer another question"
        )
    if key not in found.ground_truths:
        raise SftDataError(f"{found.run_dir / 'samples.jsonl'}: no sample of {key[0]} index {key[1]} (row {row} of {source}); "
                           "run the evaluation on this very file")
    if found.ground_truths[key] != truth:
        raise SftDataError(f"{found.run_dir / 'samples.jsonl'}: {key} has ground truth {found.ground_truths[key]!r} "
                           f"but row {row} of {source} has {truth!r}; the rollouts come from another file")


# ------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.data_prep.sft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, metavar="RL_PARQUET",
                        help="a parquet file written by data_prep/<dataset>.py (e.g. cub200/train_sub3000_seed42.parquet)")
    parser.add_argument("--target", choices=TARGETS, required=True,
                        help="label: the ground truth after a fixed reasoning line; rejection: the base model's "
                             "own responses the judge graded specific or more specific")
    parser.add_argument("--out", type=Path, help="output file (default: <stem>.sft_<target>.parquet next to --from)")
    parser.add_argument("--rollouts", type=Path, metavar="RUN_DIR",
                        help="rejection: the --out folder of 'python -m verl_ext.eval --data RL_PARQUET --n K ...'")
    parser.add_argument("--per-image", type=int, default=1, help="rejection: accepted responses kept per image (default 1)")
    parser.add_argument("--reasoning", default=FIXED_REASONING, help="label: the fixed reasoning line (default: %(default)r)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = build_sft_parquet(args.source, target=args.target, output=args.out, rollouts=args.rollouts,
                                   per_image=args.per_image, reasoning=args.reasoning, progress=not args.no_progress)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    left_out = f", {result.images_without_target} without an accepted response (left out)" if result.target == TARGET_REJECTION else ""
    print(f"{result.rows} SFT rows ({result.target} targets) from {result.images} of {result.source_rows} images{left_out} "
          f"in {result.seconds:.1f} s\nwrote {result.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
