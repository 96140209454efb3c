"""Settings of the HTTP judge client (``reward.speciarl.judge.*``), validated at start-up.

Environment fallbacks exist only where recipes need them: ``SPECIARL_JUDGE_URLS``
(comma-separated) when ``urls`` is empty, ``SPECIARL_JUDGE_MODEL`` when ``model`` is empty.
The API key is never a setting: ``api_key_env`` names the environment variable that holds it,
so it cannot end up in a config dump, a log line or a ``repr``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

CONSTRAINTS = ("choice", "json_schema", "text")
ON_FAILURE = ("fail", "degrade")
URLS_ENV = "SPECIARL_JUDGE_URLS"
MODEL_ENV = "SPECIARL_JUDGE_MODEL"
DEFAULT_API_KEY_ENV = "SPECIARL_JUDGE_API_KEY"


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class JudgeConfig:
    """How to reach the judge and how hard to try. See ``docs/judge.md`` for every key."""

    urls: tuple[str, ...] = ()
    model: Optional[str] = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    constraint: str = "json_schema"
    timeout_s: float = 30.0
    max_retries: int = 6
    max_concurrency: int = 64
    failure_budget_s: float = 300.0
    on_failure: str = "fail"
    cache_path: Optional[str] = None
    cache_size: int = 100_000
    enable_thinking: bool = False
    #: Send ``chat_template_kwargs`` (vLLM / SGLang); hosted APIs reject unknown fields.
    send_chat_template_kwargs: bool = True
    #: Reply token limit; ``None`` picks 32 (or 2048 with thinking on).
    max_tokens: Optional[int] = None
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    #: Consecutive failures that open an endpoint's circuit breaker.
    breaker_failures: int = 5
    #: How long an open breaker rejects requests before one probe is let through.
    breaker_cooldown_s: float = 5.0
    #: Test doubles only (``module:factory``); read by ``factory.build_judge``, ignored here.
    impl: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        urls = self.urls
        if isinstance(urls, str):
            urls = tuple(u for u in (p.strip() for p in urls.split(",")) if u)
        urls = tuple(str(u).strip().rstrip("/") for u in urls)
        if not urls:
            env = os.environ.get(URLS_ENV, "")
            urls = tuple(u.strip().rstrip("/") for u in env.split(",") if u.strip())
        if not urls:
            raise ValueError(f"judge.urls is empty: set judge.urls (e.g. ['http://host:8000/v1']) or {URLS_ENV}")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"judge.urls: {redact_url(url)!r} is not an http(s) base URL like http://host:8000/v1")
        if len(set(urls)) != len(urls):
            raise ValueError(f"judge.urls lists the same URL twice: {[redact_url(u) for u in urls]}")
        object.__setattr__(self, "urls", urls)
        model = self.model or os.environ.get(MODEL_ENV) or None
        object.__setattr__(self, "model", model)
        if not self.api_key_env or not str(self.api_key_env).replace("_", "").isalnum():
            raise ValueError(f"judge.api_key_env must name an environment variable, got {self.api_key_env!r}")
        if self.constraint not in CONSTRAINTS:
            raise ValueError(f"judge.constraint must be one of {CONSTRAINTS}, got {self.constraint!r}")
        if self.on_failure not in ON_FAILURE:
            raise ValueError(f"judge.on_failure must be one of {ON_FAILURE}, got {self.on_failure!r}")
        _positive("timeout_s", self.timeout_s)
        _positive("failure_budget_s", self.failure_budget_s, allow_zero=True)
        _positive("backoff_base_s", self.backoff_base_s, allow_zero=True)
        _positive("backoff_max_s", self.backoff_max_s, allow_zero=True)
        _positive("breaker_cooldown_s", self.breaker_cooldown_s, allow_zero=True)
        _integer("max_retries", self.max_retries, minimum=0)
        _integer("max_concurrency", self.max_concurrency, minimum=1)
        _integer("cache_size", self.cache_size, minimum=0)
        _integer("breaker_failures", self.breaker_failures, minimum=1)
        if self.max_tokens is not None:
            _integer("max_tokens", self.max_tokens, minimum=1)
        if self.cache_path is not None and not str(self.cache_path).strip():
            object.__setattr__(self, "cache_path", None)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in ("urls", "impl")
        )
        return f"JudgeConfig(urls=[{self.describe_urls()}], {shown})"

    @property
    def reply_token_limit(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return 2048 if self.enable_thinking else 32

    def api_key(self) -> Optional[str]:
        """The key from the environment (read when the client starts; never stored here)."""
        return os.environ.get(self.api_key_env) or None

    def describe_urls(self) -> str:
        return ", ".join(redact_url(u) for u in self.urls)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "JudgeConfig":
        """Build from a plain or OmegaConf mapping; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in dict(mapping).items():
            if key not in known:
                raise ValueError(f"judge.{key} is not a judge setting; known settings: {sorted(known)}")
            if value is None and key not in ("model", "cache_path", "max_tokens", "impl", "urls"):
                continue
            values[key] = _plain(value)
        if values.get("urls") is None:
            values.pop("urls", None)
        if "urls" in values and not isinstance(values["urls"], str):
            values["urls"] = tuple(values["urls"])
        for key in ("timeout_s", "failure_budget_s", "backoff_base_s", "backoff_max_s", "breaker_cooldown_s"):
            if key in values:
                values[key] = _as_float(key, values[key])
        for key in ("enable_thinking", "send_chat_template_kwargs"):
            if key in values:
                values[key] = _as_bool(key, values[key])
        return cls(**values)


def _plain(value: Any) -> Any:
    """OmegaConf lists become tuples; everything else is left as is."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return value
    return tuple(value)


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"judge.{key} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"judge.{key} must be a number, got {value!r}") from None


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError(f"judge.{key} must be true or false, got {value!r}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"judge.{key} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"judge.{key} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _integer(key: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"judge.{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"judge.{key} must be >= {minimum}, got {value!r}")
