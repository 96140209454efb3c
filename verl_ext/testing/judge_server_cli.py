"""``python -m verl_ext.testing.judge_server_cli --rules FILE``: the scripted judge as a process.

For scripts and tests that run the server in another process (``recipes/smoke_cpu.sh``): it
serves ``ScriptableJudgeServer`` on 127.0.0.1 until SIGTERM or SIGINT, writes its URL to a
ready file once listening and, on exit, its counters to a stats file (also at ``GET /stats``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

from verl_ext.core.categories import Category
from verl_ext.testing.judge_server import ScriptableJudgeServer, label_of


def load_rules_file(path: str) -> tuple[dict[tuple[str, str], Category], Category]:
    """A rule table from JSON: ``{"rules": [[ground_truth, prediction, label], ...], "default": label}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rules = {}
    for row, entry in enumerate(data.get("rules", [])):
        if not (isinstance(entry, list) and len(entry) == 3):
            raise ValueError(f"{path}: rules[{row}] must be [ground_truth, prediction, label], got {entry!r}")
        rules[(str(entry[0]), str(entry[1]))] = label_of(entry[2])
    return rules, label_of(data.get("default", "wrong"))


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m verl_ext.testing.judge_server --rules FILE``: serve on 127.0.0.1 until stopped."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m verl_ext.testing.judge_server_cli", description=main.__doc__)
    parser.add_argument("--rules", required=True, help="JSON rule table (see load_rules_file)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--latency-s", type=float, default=0.0, help="service time of every request")
    parser.add_argument("--capacity", type=int, default=None, help="requests served at once (default: unlimited)")
    parser.add_argument("--ready-file", help="write the base URL here once listening")
    parser.add_argument("--stats-file", help="write the final counters here (JSON) on exit")
    args = parser.parse_args(argv)
    rules, default = load_rules_file(args.rules)
    server = ScriptableJudgeServer(rules, default=default, latency_s=args.latency_s, capacity=args.capacity, port=args.port)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            print(f"scripted judge listening on {server.url}", flush=True)
            if args.ready_file:
                tmp = Path(args.ready_file + ".tmp")
                tmp.write_text(server.url, encoding="utf-8")
                tmp.replace(args.ready_file)
            await stop.wait()
            if args.stats_file:
                Path(args.stats_file).write_text(json.dumps(server.stats_snapshot(), indent=1), encoding="utf-8")

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
