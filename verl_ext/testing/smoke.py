"""The CPU smoke training run: what it needs before it starts, and what its outputs must show.

``recipes/smoke_cpu.sh`` trains the offline kit's tiny Qwen2.5-VL for two GRPO steps on a
miniature CUB layout, through the same ``recipes/common.sh`` path as every GPU recipe, with
verl's real ``main_ppo`` on the CPU backend (``verl_ext.testing.cpu_backend``). This module

* ``prepare``s its inputs: the kit, the miniature CUB folder, the answer labels the CPU
  rollout scripts and the rule table the scripted judge grades by;
* ``check``s a finished run from its own outputs only (rollout and validation dumps,
  ``speciarl_reward_metrics.jsonl``, the checkpoint folder, the CPU rollout's logs): every
  reward equals the offline rule, every step and validation pass has reward figures, a
  checkpoint exists, the rollout followed the actor's weights.

The judge is a test double (``judge_server.ScriptableJudgeServer``) and the answers are
scripted (``cpu_backend/scripted.py``); generation, weight sync, rewards, advantages and
updates are verl's and ours, for real.

CLI: ``python -m verl_ext.testing.smoke prepare DIR`` / ``check RUN_DIR --rules FILE``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from verl_ext.core.answer import extract_answer, normalise_label
from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade
from verl_ext.core.rules import best_in_group_rewards
from verl_ext.judge.shortcuts import short_circuit

#: The miniature CUB: 4 classes (3 albatrosses and an ani), 6 training and 2 test images each.
CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 6, 2
FAMILY = "albatross"


@dataclass(frozen=True)
class SmokeInputs:
    kit: Path
    data_root: Path
    answers_file: Path
    rules_file: Path
    class_names: tuple[str, ...]


def rule_table(class_names: Sequence[str]) -> list[list[str]]:
    """``[ground_truth, prediction, category]`` rows: the family is less specific, "bird" generic."""
    rows = []
    for name in class_names:
        if FAMILY in name.lower():
            rows.append([name, FAMILY, Category.LESS_SPECIFIC.label])
        rows.append([name, "bird", Category.GENERIC.label])
    return rows


def answer_labels(class_names: Sequence[str]) -> list[str]:
    """What the CPU rollout answers: every class (right for some images), the family, "bird", "None"."""
    return [*class_names, FAMILY, "bird", "None"]


def prepare(out_dir: Path) -> SmokeInputs:
    """Build (or reuse) the kit, the miniature CUB layout, the answers and the rule table."""
    from verl_ext.testing.kit import MARKER_FILE, build_offline_kit
    from verl_ext.testing.layouts import build_cub

    out_dir = Path(out_dir)
    kit = out_dir / "kit"
    if not (kit / MARKER_FILE).is_file():
        build_offline_kit(kit)
    data_root = out_dir / "raw" / "cub200"
    # Deterministic: rebuilding over an earlier run's folder writes the same files.
    mini = build_cub(data_root, classes=CLASSES, train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS)
    class_names = tuple(mini.class_names)
    answers_file = out_dir / "answers.json"
    answers_file.write_text(json.dumps(answer_labels(class_names)), encoding="utf-8")
    rules_file = out_dir / "judge_rules.json"
    rules_file.write_text(json.dumps({"default": "wrong", "rules": rule_table(class_names)}, indent=1), encoding="utf-8")
    return SmokeInputs(kit, data_root, answers_file, rules_file, class_names)


# ------------------------------------------------------------------------- the offline rule
def offline_grade(ground_truth: str, response: str, table: dict[tuple[str, str], Category], default: Category) -> Grade:
    """The grade the reward must have given: parse, short-circuit, else the judge's rule table."""
    answer = extract_answer(response)
    if answer is None:
        return Grade.parse_failure()
    gt, pred = normalise_label(ground_truth), normalise_label(answer)
    category = short_circuit(gt, pred) or table.get((gt, pred), default)
    return Grade.judged(category)


def load_rules(path: Path) -> tuple[dict[tuple[str, str], Category], Category]:
    from verl_ext.core.categories import parse_category

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    table = {(normalise_label(gt), normalise_label(pred)): parse_category(label) for gt, pred, label in data["rules"]}
    return table, parse_category(data.get("default", "wrong"))


def read_dump(folder: Path) -> list[dict]:
    """Every row of verl's generation dumps in ``folder`` (``<step>.jsonl``), with its step."""
    rows = []
    for path in sorted(Path(folder).glob("*.jsonl"), key=lambda p: int(p.stem)):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def group_key(row: dict) -> tuple[int, str]:
    """(step, uid) of a dumped rollout; verl's key is ``{uid}_{session}_{output}``."""
    return int(row["step"]), row["uid"].rsplit("_", 2)[0]


def expected_rewards(rows: Iterable[dict], table, default) -> dict[int, float]:
    """Row index -> the best-in-group reward its group's offline grades give it."""
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    rows = list(rows)
    for index, row in enumerate(rows):
        groups[group_key(row)].append(index)
    expected = {}
    for members in groups.values():
        grades = [offline_grade(rows[i]["gts"], rows[i]["output"], table, default) for i in members]
        for i, reward in zip(members, best_in_group_rewards(grades)):
            expected[i] = reward
    return expected


def judge_pairs(rows: Iterable[dict]) -> set[tuple[str, str]]:
    """The normalised (ground truth, answer) pairs that needed the judge (no parse failure, no short circuit)."""
    pairs = set()
    for row in rows:
        answer = extract_answer(row["output"])
        if answer is None:
            continue
        gt, pred = normalise_label(row["gts"]), normalise_label(answer)
        if short_circuit(gt, pred) is None:
            pairs.add((gt, pred))
    return pairs


# ------------------------------------------------------------------------- checking a run
class SmokeCheckError(AssertionError):
    """A smoke run's outputs contradict what the run must have done."""


@dataclass(frozen=True)
class SmokeReport:
    train_rows: int
    val_rows: int
    train_steps: list[int]
    val_steps: list[int]
    judge_pairs: int
    checkpoint: Path

    def lines(self) -> list[str]:
        return [
            f"rewards match the offline rule for all {self.train_rows} training and {self.val_rows} validation rollouts",
            f"reward figures for training steps {self.train_steps} and validation passes at steps {self.val_steps}",
            f"{self.judge_pairs} distinct (ground truth, answer) pairs needed the judge",
            f"last checkpoint: {self.checkpoint}",
        ]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeCheckError(message)


def check(run_dir: Path, rules_file: Path, steps: int = 2) -> SmokeReport:
    """Check a finished smoke run from its outputs; raises :class:`SmokeCheckError` on the first problem."""
    run_dir = Path(run_dir)
    table, default = load_rules(rules_file)
    train = read_dump(run_dir / "rollouts")
    val = read_dump(run_dir / "validation")
    _require(bool(train), f"no rollout dump in {run_dir / 'rollouts'} (trainer.rollout_data_dir)")
    _require(bool(val), f"no validation dump in {run_dir / 'validation'} (trainer.validation_data_dir)")
    for rows, name in ((train, "training"), (val, "validation")):
        for index, reward in expected_rewards(rows, table, default).items():
            row = rows[index]
            _require(
                abs(row["score"] - reward) < 1e-6,
                f"{name} rollout {row.get('uid', index)} at step {row['step']}: reward {row['score']} but the offline "
                f"rule gives {reward} (ground truth {row['gts']!r}, output {row['output']!r})",
            )
    figures = [json.loads(line) for line in (run_dir / "speciarl_reward_metrics.jsonl").read_text().splitlines()]
    train_steps = sorted(r["step"] for r in figures if r["role"] == "train")
    val_steps = sorted(r["step"] for r in figures if r["role"] == "val")
    _require(train_steps == list(range(1, steps + 1)), f"reward figures for training steps {train_steps}, expected 1..{steps}")
    dumped_val_steps = sorted({int(r["step"]) for r in val})
    _require(val_steps == dumped_val_steps, f"reward figures for validation at {val_steps}, but validation ran at {dumped_val_steps}")
    checkpoint = run_dir / f"global_step_{steps}" / "actor"
    _require(checkpoint.is_dir(), f"no checkpoint at {checkpoint}")
    return SmokeReport(len(train), len(val), train_steps, val_steps, len(judge_pairs(train + val)), checkpoint)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.testing.smoke", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build the kit, the miniature CUB, the answers and the judge's rules")
    prep.add_argument("out_dir", type=Path)
    chk = sub.add_parser("check", help="check a finished smoke run from its outputs")
    chk.add_argument("run_dir", type=Path)
    chk.add_argument("--rules", type=Path, required=True, help="the judge's rule table (judge_rules.json)")
    chk.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        inputs = prepare(args.out_dir)
        for name, value in (("KIT", inputs.kit), ("DATA_ROOT", inputs.data_root), ("ANSWERS", inputs.answers_file),
                            ("RULES", inputs.rules_file)):
            print(f"{name}={value}")
        return 0
    try:
        report = check(args.run_dir, args.rules, args.steps)
    except SmokeCheckError as error:
        print(f"[smoke] check failed: {error}")
        return 1
    for line in report.lines():
        print(f"[smoke] ok: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
