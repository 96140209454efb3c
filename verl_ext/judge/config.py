"""Settings of the HTTP judge client (``reward.speciarl.judge.*``), validated at start-up.

The environment is read in one place, :meth:`JudgeConfig.from_mapping`: ``SPECIARL_JUDGE_URLS``
(comma-separated) when ``urls`` is empty, ``SPECIARL_JUDGE_MODEL`` when ``model`` is empty,
and the API key from the variable that ``api_key_env`` names. The key is never a setting: it
is held apart from the fields, so it cannot end up in a config dump, a log line or a ``repr``.
A config built directly (``JudgeConfig(urls=...)``) reads nothing from the environment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, PrivateAttr, field_validator

from verl_ext.settings import Settings, SettingsError, load_settings, plain

Constraint = Literal["choice", "json_schema", "text"]
CONSTRAINTS: tuple[str, ...] = get_args(Constraint)
OnFailure = Literal["fail", "degrade"]
URLS_ENV = "SPECIARL_JUDGE_URLS"
MODEL_ENV = "SPECIARL_JUDGE_MODEL"
DEFAULT_API_KEY_ENV = "SPECIARL_JUDGE_API_KEY"
_ENV_NAME = re.compile(r"[A-Za-z0-9_]+")


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def split_urls(value: str) -> tuple[str, ...]:
    """``"http://a/v1, http://b/v1/"`` -> ``("http://a/v1", "http://b/v1")``."""
    return tuple(u.strip().rstrip("/") for u in value.split(",") if u.strip())


def parse_setting_overrides(items: Sequence[str], option: str) -> dict[str, Any]:
    """Command-line ``KEY=VALUE`` judge settings; a VALUE is parsed as JSON when it can be."""
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{option} {item!r}: expected KEY=VALUE")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value
    return settings


class JudgeConfig(Settings):
    """How to reach the judge and how hard to try. See ``docs/judge.md`` for every key."""

    urls: tuple[str, ...] = ()
    model: Optional[str] = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    constraint: Constraint = "json_schema"
    timeout_s: float = Field(30.0, gt=0, strict=True)
    max_retries: int = Field(6, ge=0, strict=True)
    max_concurrency: int = Field(64, ge=1, strict=True)
    failure_budget_s: float = Field(300.0, ge=0, strict=True)
    on_failure: OnFailure = "fail"
    cache_path: Optional[str] = None
    cache_size: int = Field(100_000, ge=0, strict=True)
    enable_thinking: bool = False
    #: Send ``chat_template_kwargs`` (vLLM / SGLang); hosted APIs reject unknown fields.
    send_chat_template_kwargs: bool = True
    #: Reply token limit; ``None`` picks 32 (or 2048 with thinking on).
    max_tokens: Optional[int] = Field(None, ge=1, strict=True)
    backoff_base_s: float = Field(0.5, ge=0, strict=True)
    backoff_max_s: float = Field(10.0, ge=0, strict=True)
    #: Consecutive failures that open an endpoint's circuit breaker.
    breaker_failures: int = Field(5, ge=1, strict=True)
    #: How long an open breaker rejects requests before one probe is let through.
    breaker_cooldown_s: float = Field(5.0, ge=0, strict=True)
    #: Test doubles only (``module:factory``); read by ``factory.build_judge``, ignored here.
    impl: Optional[str] = None

    _api_key: Optional[str] = PrivateAttr(default=None)

    @field_validator("urls", mode="before")
    @classmethod
    def _check_urls(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            urls = split_urls(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(u, str) for u in value):
            urls = tuple(u.strip().rstrip("/") for u in value if u.strip())
        else:
            raise ValueError("must be a list of base URLs like ['http://host:8000/v1']")
        if not urls:
            raise ValueError(f"must list at least one base URL, e.g. ['http://host:8000/v1'] (or set {URLS_ENV})")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{redact_url(url)!r} is not an http(s) base URL like http://host:8000/v1")
        if len(set(urls)) != len(urls):
            raise ValueError(f"lists the same URL twice: {[redact_url(u) for u in urls]}")
        return urls

    @field_validator("model", "cache_path", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key_env")
    @classmethod
    def _check_api_key_env(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"must name an environment variable, got {value!r}")
        return value

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            if name == "urls":
                yield name, tuple(redact_url(u) for u in value)
            elif name != "impl":
                yield name, value

    @property
    def reply_token_limit(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return 2048 if self.enable_thinking else 32

    def api_key(self) -> Optional[str]:
        """The key read by :meth:`from_mapping` from the variable ``api_key_env`` names, if any."""
        return self._api_key

    def describe_urls(self) -> str:
        return ", ".join(redact_url(u) for u in self.urls)

    @classmethod
    def from_mapping(
        cls, mapping: Any, key: str = "judge", environ: Optional[Mapping[str, str]] = None
    ) -> "JudgeConfig":
        """The factory: settings from a plain or OmegaConf mapping, plus the environment fallbacks.

        ``key`` is where the mapping sits (``"reward.speciarl.judge"``), for error messages.
        """
        environ = os.environ if environ is None else environ
        values = plain(mapping)
        if values is None:
            values = {}
        if isinstance(values, Mapping):
            values = dict(values)
            if not values.get("urls"):
                values["urls"] = split_urls(environ.get(URLS_ENV, ""))
            if not values.get("model"):
                values["model"] = environ.get(MODEL_ENV) or None
        config = load_settings(cls, values, key)
        config._api_key = environ.get(config.api_key_env) or None
        return config
