"""Quick check of a deployed judge: ``python -m verl_ext.judge --url URL --gt GT --pred PRED``.

Prints the category (or the error) for one pair and exits non-zero when the judge fails.
The API key, if any, is read from the environment variable named by ``--api-key-env``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import CONSTRAINTS, DEFAULT_API_KEY_ENV, JudgeConfig
from verl_ext.settings import SettingsError

_DEFAULTS = JudgeConfig()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.judge", description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", default=[], help="base URL, e.g. http://host:8000/v1 (repeatable)")
    parser.add_argument("--gt", required=True, help="ground-truth label")
    parser.add_argument("--pred", required=True, help="predicted label")
    parser.add_argument("--model", default=None, help="served model name (default: the server's first model)")
    parser.add_argument("--constraint", choices=CONSTRAINTS, default=_DEFAULTS.constraint)
    parser.add_argument("--api-key-env", default=DEFAULT_API_KEY_ENV, help="name of the env var holding the key")
    parser.add_argument("--timeout-s", type=float, default=_DEFAULTS.timeout_s)
    parser.add_argument("--enable-thinking", action="store_true")
    parser.add_argument("--no-chat-template-kwargs", action="store_true", help="for hosted APIs")
    parser.add_argument("--verbose", action="store_true", help="also print how the verdict was obtained")
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = dict(
        urls=args.url,
        model=args.model,
        api_key_env=args.api_key_env,
        constraint=args.constraint,
        timeout_s=args.timeout_s,
        max_retries=2,
        failure_budget_s=args.timeout_s,
        backoff_base_s=0.2,
        breaker_cooldown_s=0.5,
        enable_thinking=args.enable_thinking,
        send_chat_template_kwargs=not args.no_chat_template_kwargs,
    )
    config = JudgeConfig.from_mapping(settings, key="judge")
    client = OpenAIJudgeClient(config)
    try:
        verdict = await client.grade(args.gt, args.pred)
    finally:
        await client.aclose()
    if not verdict.ok:
        print(f"error: {verdict.error}", file=sys.stderr)
        return 1
    assert verdict.category is not None
    print(verdict.category.label)
    if args.verbose:
        print(f"source: {verdict.source}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (SettingsError, JudgeUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
