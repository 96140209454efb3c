"""Score stage: grades -> per-dataset and per-group metrics, with the Best-of-N oracle.

Definitions (inferred: the paper reports these metrics but publishes no formulas, and the
original code computes none), as computed by ``core.metrics.GradeTally``:

* a *graded* sample is one the judge categorised or that failed to parse; judge errors are
  left out of every denominator and reported on their own;
* **correctness** = (generic + less specific + specific + more specific) / graded;
* **specificity** = (specific + more specific) / correct;
* **HM** = 2 · specificity · correctness / (specificity + correctness);
* **shares** = each category's count / graded, plus the parse-failure rate (they sum to 1);
* with N > 1 samples per image, the per-sample metrics pool all N samples (the mean over
  samples); **Best-of-N** keeps, per image, the sample with the best evaluation rank
  (``core.best_of_n``) and computes the same metrics over those;
* a **group** value is the unweighted mean over its datasets present in the run, HM
  included (the mean of per-dataset HMs, not the HM of the means).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from verl_ext.core.best_of_n import best_of_n_per_image
from verl_ext.core.categories import Category, parse_category
from verl_ext.core.datasets import DATASET_GROUPS
from verl_ext.core.grades import Grade
from verl_ext.core.metrics import GradeTally, average_summaries
from verl_ext.eval.items import EvalItem
from verl_ext.eval.judging import Pair, normalised_pair

METRICS_SCHEMA = "speciarl-eval/1"

DEFINITIONS = {
    "status": "inferred from the paper's reported numbers; the paper's exact formulas are unconfirmed",
    "graded": "samples the judge categorised plus parse failures; judge errors are excluded and counted apart",
    "correctness": "(generic + less specific + specific + more specific) / graded",
    "specificity": "(specific + more specific) / (generic + less specific + specific + more specific)",
    "hm": "2 * specificity * correctness / (specificity + correctness); 0 when both are 0",
    "shares": "count of each category (and of parse failures) / graded",
    "samples": "with n > 1 all n samples per image are pooled (the mean over samples)",
    "best_of_n": "per image the sample with the best evaluation rank: more specific > specific > less "
                 "specific > generic > abstain > wrong > parse failure > judge error; ties -> lowest index. "
                 "Uses the ground truth: an upper bound, not a method",
    "groups": "unweighted mean over the group's datasets present; HM is the mean of per-dataset HMs (inferred: "
              "it matches the paper's reported numbers better than pooling)",
}


#: Protocol 2 (Conti et al.): definitions from the public reference implementation, plus what is ours.
OPEN_WORLD_DEFINITIONS = {
    "status": "TI, LI, SS, CS follow the public lmms-owc code (confirmed there); which prediction text the "
              "paper scored, how it treated parse failures, and its group averaging are not published (ours)",
    "prediction": "the <answer> content (default) or the whole response (--owc-prediction response)",
    "ti": "1 if the lower-cased reference is a substring of the lower-cased prediction, else 0",
    "li": "1 if an LLM judge, asked whether the prediction describes or includes the reference, replies exactly '1'",
    "ss": "cosine of the all-MiniLM-L6-v2 mean-pooled embeddings of the reference and the whole prediction",
    "cs": "largest cosine between the reference and the prediction's concepts (noun chunks, entities, itself)",
    "parse failures": "score 0 on every metric and are counted (n_parse_failures)",
    "li errors": "samples whose LI judge failed are left out of LI only and counted (n_li_errors); rerun to retry",
    "scale": "fractions in metrics.json; tables show x100 (inferred from the paper's TI = 62.7)",
    "groups": "unweighted mean over the group's datasets present (inferred, as for protocol 1)",
}


def grade_response(ground_truth: str, response: str, verdicts: Mapping[Pair, str]) -> Grade:
    """The grade of one response: parse failure, judged category, or judge error (no verdict)."""
    pair = normalised_pair(ground_truth, response)
    if pair is None:
        return Grade.parse_failure()
    label = verdicts.get(pair)
    return Grade.judged(parse_category(label)) if label is not None else Grade.judge_error()


def _tally_summary(tally: GradeTally) -> dict:
    summary = tally.summary()
    summary["counts"] = {c.label: tally.categories[c] for c in Category}
    summary["counts"]["parse failure"] = tally.parse_failures
    summary["counts"]["judge error"] = tally.judge_errors
    return summary


def _group_averages(per_dataset: Mapping[str, Mapping[str, float]]) -> dict:
    out = {}
    for group, members in DATASET_GROUPS.items():
        present = [m for m in members if m in per_dataset]
        if present:
            out[group] = {**average_summaries(per_dataset, present), "datasets": present}
    return out


def score(
    items: Sequence[EvalItem],
    responses: Mapping[str, Sequence[str]],
    verdicts: Optional[Mapping[Pair, str]],
    n: int,
) -> dict:
    """Protocol-1 metrics for every dataset and group; ``responses`` maps image hash -> N responses.

    ``verdicts=None`` (the judge was not asked, ``--metrics`` without ``judge``) gives only the
    run's skeleton: the datasets and their image counts.
    """
    if verdicts is None:
        counts: "OrderedDict[str, int]" = OrderedDict()
        for item in items:
            counts[item.data_source] = counts.get(item.data_source, 0) + 1
        return {"schema": METRICS_SCHEMA, "n": n, "definitions": DEFINITIONS, "groups": {}, "n_judge_errors": 0,
                "complete": True, "datasets": {name: {"n_images": k} for name, k in counts.items()}}
    grades_by_source: "OrderedDict[str, list[list[Grade]]]" = OrderedDict()
    for item in items:
        sample_grades = [grade_response(item.ground_truth, r, verdicts) for r in responses[item.image_sha256]]
        grades_by_source.setdefault(item.data_source, []).append(sample_grades)

    datasets: dict[str, dict] = {}
    for source, per_image in grades_by_source.items():
        entry = {
            "n_images": len(per_image),
            "samples": _tally_summary(GradeTally.of(g for image in per_image for g in image)),
        }
        if n > 1:
            entry["best_of_n"] = _tally_summary(GradeTally.of(best_of_n_per_image(per_image)))
        datasets[source] = entry

    out = {
        "schema": METRICS_SCHEMA,
        "n": n,
        "definitions": DEFINITIONS,
        "datasets": datasets,
        "groups": {"samples": _group_averages({k: v["samples"] for k, v in datasets.items()})},
    }
    if n > 1:
        out["groups"]["best_of_n"] = _group_averages({k: v["best_of_n"] for k, v in datasets.items()})
    judge_errors = sum(int(v["samples"]["n_judge_errors"]) for v in datasets.values())
    out["n_judge_errors"] = judge_errors
    out["complete"] = judge_errors == 0
    return out


def views(metrics: Mapping) -> list[str]:
    """The result views present in a metrics dict: ``samples`` and, with N > 1, ``best_of_n``."""
    return [v for v in ("samples", "best_of_n") if v in metrics.get("groups", {})]


def view_title(metrics: Mapping, view: str, method: Optional[str] = None) -> str:
    name = method or metrics.get("method", "run")
    return f"{name} BoN-{metrics['n']}" if view == "best_of_n" else name
