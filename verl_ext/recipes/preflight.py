"""Checks a recipe runs before it spends GPU time: model weights present, judge reachable.

A missing model or a dead judge otherwise surfaces minutes later as a stack trace inside a
Ray worker. Each check here fails in seconds with a message that says what to do.

CLI (exit status 0 = fine, 2 = a problem the message explains)::

    python -m verl_ext.recipes.preflight model Qwen/Qwen2.5-VL-7B-Instruct
    python -m verl_ext.recipes.preflight judge --url http://127.0.0.1:8000/v1 --model M --wait 900 --pid 1234
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from verl_ext.judge.config import DEFAULT_API_KEY_ENV, MODEL_ENV, URLS_ENV, redact_url
from verl_ext.judge.http_client import ModelListingError, list_served_models
from verl_ext.eval.model_source import has_weights
from verl_ext.recipes.errors import RecipeError


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def check_model_dir(path: Path) -> Path:
    """A local model directory must hold a config and at least one weight file."""
    if not (path / "config.json").is_file():
        raise RecipeError(f"model directory {path} has no config.json; point MODEL_PATH at a Hugging Face model folder")
    if not has_weights(path):
        raise RecipeError(
            f"model directory {path} has a config.json but no weight files (*.safetensors / *.bin); "
            "the download is incomplete: re-run `hf download <model> --local-dir <dir>`"
        )
    return path


def resolve_model(model: str) -> Path:
    """Return a local folder with the model's weights, downloading from the hub if allowed."""
    local = Path(model).expanduser()
    if local.exists():
        return check_model_dir(local)
    if model.startswith(("/", "./", "../", "~")):
        raise RecipeError(f"model path {model} does not exist")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - huggingface_hub ships with transformers
        raise RecipeError(f"huggingface_hub is not installed, cannot resolve model id {model}") from exc
    try:
        folder = snapshot_download(model, local_files_only=True)
        return check_model_dir(Path(folder))
    except (LocalEntryNotFoundError, RecipeError, OSError) as cached_error:
        if _offline():
            raise RecipeError(
                f"model weights for {model} are not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
                f"downloading; run `hf download {model}` on a machine with internet (same HF_HOME), "
                "or set MODEL_PATH to a local folder"
            ) from cached_error
    try:
        folder = snapshot_download(model)
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; all mean the same to the user
        raise RecipeError(
            f"could not download model weights for {model}: {type(exc).__name__}: {exc}. Check the model id, "
            "your network, and for gated models `hf auth login`; or set MODEL_PATH to a local folder"
        ) from exc
    return check_model_dir(Path(folder))


def probe_judge(base_url: str, *, api_key: Optional[str], timeout_s: float = 5.0) -> list[str]:
    """The model ids the judge at ``base_url`` serves; raises RecipeError when it does not answer."""
    try:
        return list_served_models(base_url, api_key=api_key, timeout_s=timeout_s)
    except ModelListingError as exc:
        hint = f" (set {DEFAULT_API_KEY_ENV})" if exc.status in (401, 403) else ""
        raise RecipeError(f"{exc}{hint}") from exc


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_judges(
    urls: Sequence[str],
    *,
    model: Optional[str],
    api_key: Optional[str],
    wait_s: float = 0.0,
    poll_s: float = 2.0,
    pid: Optional[int] = None,
    log_path: Optional[str] = None,
) -> None:
    """Block until every URL answers ``/models`` (and serves ``model``), or fail with the reason."""
    if not urls:
        raise RecipeError(f"no judge URL given: set {URLS_ENV} (comma-separated base URLs ending in /v1)")
    deadline = time.monotonic() + wait_s
    pending = list(urls)
    last_error: dict[str, str] = {}
    while True:
        for url in list(pending):
            try:
                served = probe_judge(url, api_key=api_key)
            except RecipeError as exc:
                last_error[url] = str(exc)
                continue
            if model and model not in served:
                raise RecipeError(
                    f"judge at {redact_url(url)} serves {served or 'no model'}, not {model!r}; "
                    f"set {MODEL_ENV} to the served model name"
                )
            pending.remove(url)
        if not pending:
            return
        if pid is not None and not _process_alive(pid):
            where = f"; its log is {log_path}" if log_path else ""
            raise RecipeError(f"the judge server process {pid} exited during start-up{where}")
        if time.monotonic() >= deadline:
            reasons = "; ".join(last_error[u] for u in pending)
            waited = f" after waiting {wait_s:.0f} s" if wait_s > 0 else ""
            raise RecipeError(
                f"judge not ready{waited}: {reasons}. Start one with `bash recipes/judge_server.sh` "
                f"or point {URLS_ENV} at a running OpenAI-compatible server"
            )
        time.sleep(poll_s)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    model = sub.add_parser("model", help="check (or fetch) model weights")
    model.add_argument("model")
    judge = sub.add_parser("judge", help="check that judge servers answer")
    judge.add_argument("--url", action="append", required=True, help="base URL ending in /v1 (repeatable)")
    judge.add_argument("--model", default=None, help="served model name that must be listed")
    judge.add_argument("--api-key-env", default=DEFAULT_API_KEY_ENV, help="NAME of the env var holding the key")
    judge.add_argument("--wait", type=float, default=0.0, help="seconds to keep polling before failing")
    judge.add_argument("--pid", type=int, default=None, help="fail early if this server process dies")
    judge.add_argument("--log", default=None, help="server log to mention when it dies")
    args = parser.parse_args(argv)
    try:
        if args.check == "model":
            print(resolve_model(args.model))
        else:
            wait_for_judges(
                args.url,
                model=args.model,
                api_key=os.environ.get(args.api_key_env) or None,
                wait_s=args.wait,
                pid=args.pid,
                log_path=args.log,
            )
            print("judge ready: " + ", ".join(args.url))
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
