"""The judge's cost inside a real training step: verl's ``main_ppo`` on CPU, instant judge vs 50 ms.

The SpeciaRL reward asks the judge as each rollout finishes, so the judge's latency should be
hidden behind the generation of the rollout's siblings: a step should take no longer with a
slow judge than with an instant one, beyond the last rollout's own request.

Workload: ``recipes/smoke_cpu.sh`` (the offline kit's tiny Qwen2.5-VL on the CPU backend, 4
images x 4 rollouts a step, two reward workers), judged by the scriptable OpenAI-compatible
server on 127.0.0.1 (a rule-table test double for a vLLM judge), run by this script in a thread.

* full: two trainings side by side, one with an instant judge, one with ``--latency-s`` (50 ms)
  and ``--slots`` (64) concurrent requests; ``--steps`` steps each, the first (warm-up) dropped.
* ``--quick``: one training of 3 steps; the judge is instant for steps 1 (warm-up) and 2 and
  slow from step 3 on (switched when the rollout's log shows step 2's weight sync).

Figures are verl's own ``timing_s/step`` and ``timing_s/gen`` from its console log line, as
medians over the measured steps. ``judge_overhead_s`` is the median over steps of the paired
difference (slow step k - instant step k): both trainings see the same prompts, the same
scripted answers and the same rewards at step k, so pairing cancels what differs from step to
step (response lengths, group shapes) and leaves the judge and the machine's noise.
Goal: ``judge_overhead_s <= 2 x latency``. Sampling is timed with the trainer mode's replay
poll at 20 ms (verl's 2 s poll would round every step's sampling up to 2 s steps). Ends with
one ``RESULT`` line.

    python benchmarks/e2e_step.py [--quick] [--steps 10] [--latency-s 0.05] [--slots 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "recipes" / "smoke_cpu.sh"
STEP_LINE = re.compile(r"step:(\d+) - (.*)")
POLL_S = 0.02


def step_timings(console: str) -> dict[int, dict[str, float]]:
    """``{step: {"timing_s/step": s, "timing_s/gen": s}}`` from verl's console logger lines."""
    timings = {}
    for match in STEP_LINE.finditer(console):
        step, fields = int(match.group(1)), match.group(2)
        found = dict(re.findall(r"(timing_s/(?:step|gen)):(?:np\.float64\()?([0-9.]+)", fields))
        if "timing_s/step" in found:
            timings[step] = {key: float(value) for key, value in found.items()}
    return timings


def train(smoke_dir: Path, judge_url: str, steps: int) -> str:
    """One smoke training with verl's own timers; returns its console output."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        PYTHON=sys.executable, SMOKE_DIR=str(smoke_dir), SMOKE_STEPS=str(steps), SMOKE_CHECK="0",
        SPECIARL_JUDGE_URLS=judge_url, SPECIARL_JUDGE_MODEL="scripted-judge",
    )
    # Only steps are timed: no validation, no checkpoint inside the step timer; the replay
    # buffer polls every 20 ms so that sampling time is not rounded up to the poll.
    args = ["trainer.val_before_train=False", "trainer.test_freq=-1", "trainer.save_freq=-1",
            f"++trainer.v1.speciarl.poll_interval_s={POLL_S}"]
    result = subprocess.run(["bash", str(SMOKE), *args], env=env, capture_output=True, text=True, timeout=1200)
    console = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"smoke training failed (exit {result.returncode}):\n{console[-4000:]}")
    return console


def switch_latency_after_sync(judge, log_dir: Path, after_step: int, latency_s: float, stop: threading.Event) -> None:
    """Make the judge slow once the rollout server has loaded the weights of ``after_step``."""
    log = log_dir / "rollout_server_0.jsonl"
    while not stop.is_set():
        if log.is_file():
            for line in log.read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                if event.get("event") == "update_weights" and event.get("global_steps") == after_step:
                    judge.latency_s = latency_s
                    return
        time.sleep(0.005)


def median_of(timings: dict[int, dict[str, float]], steps: list[int], key: str) -> float:
    missing = [s for s in steps if s not in timings]
    if missing:
        raise RuntimeError(f"verl logged no {key} for steps {missing}")
    return statistics.median(timings[s][key] for s in steps)


def main(argv: Optional[list[str]] = None) -> int:
    from verl_ext.testing.judge_server import ScriptableJudgeServer
    from verl_ext.testing.judge_server_cli import load_rules_file
    from verl_ext.testing.smoke import prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 3-step training, judge switched at step 3")
    parser.add_argument("--steps", type=int, default=10, help="steps per training in the full run (first dropped)")
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument("--slots", type=int, default=64, help="requests the slow judge serves at once")
    args = parser.parse_args(argv)
    lat = args.latency_s

    with tempfile.TemporaryDirectory(prefix="e2e_step_") as tmp:
        root = Path(tmp)
        rules, default = load_rules_file(str(prepare(root / "instant").rules_file))
        results: dict[str, dict[str, float]] = {}
        started = time.monotonic()
        if args.quick:
            with ScriptableJudgeServer(rules, default=default, capacity=args.slots) as judge:
                stop = threading.Event()
                watcher = threading.Thread(
                    target=switch_latency_after_sync,
                    args=(judge, root / "instant" / "run" / "cpu_backend", 2, lat, stop), daemon=True,
                )
                watcher.start()
                try:
                    timings = step_timings(train(root / "instant", judge.url, 3))
                finally:
                    stop.set()
            for name, steps in (("instant", [2]), ("slow", [3])):
                results[name] = {k: median_of(timings, steps, f"timing_s/{k}") for k in ("step", "gen")}
            overhead = results["slow"]["step"] - results["instant"]["step"]
        else:
            measured = list(range(2, args.steps + 1))
            runs = {}
            for name, latency, capacity in (("instant", 0.0, None), ("slow", lat, args.slots)):
                with ScriptableJudgeServer(rules, default=default, latency_s=latency, capacity=capacity) as judge:
                    runs[name] = step_timings(train(root / name, judge.url, args.steps))
                results[name] = {k: median_of(runs[name], measured, f"timing_s/{k}") for k in ("step", "gen")}
            print(f"{'step':<6}{'instant s':>11}{'slow s':>9}{'slow - instant':>16}")
            for step in measured:
                a, b = runs["instant"][step]["timing_s/step"], runs["slow"][step]["timing_s/step"]
                print(f"{step:<6}{a:>11.3f}{b:>9.3f}{b - a:>+16.3f}")
            overhead = statistics.median(
                runs["slow"][s]["timing_s/step"] - runs["instant"][s]["timing_s/step"] for s in measured
            )
        wall = time.monotonic() - started

    print(f"{'judge':<22}{'step s':>9}{'gen s':>9}")
    for name, label in (("instant", "instant"), ("slow", f"{lat * 1000:g} ms, {args.slots} slots")):
        print(f"{label:<22}{results[name]['step']:>9.3f}{results[name]['gen']:>9.3f}")
    goal = overhead <= 2 * lat
    print(f"goal: judge_overhead_s <= {2 * lat:g} {'met' if goal else 'MISSED'} ({overhead:+.3f} s per step)")
    result = {
        "mode": "quick" if args.quick else "full",
        "instant_step_s": round(results["instant"]["step"], 3),
        "instant_gen_s": round(results["instant"]["gen"], 3),
        "slow_step_s": round(results["slow"]["step"], 3),
        "slow_gen_s": round(results["slow"]["gen"], 3),
        "judge_overhead_s": round(overhead, 3),
        "judge_latency_s": lat,
        "goal_met": int(goal),
        "wall_s": round(wall, 1),
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
