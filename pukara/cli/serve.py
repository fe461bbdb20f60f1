"""``pukara serve --host H --port P``: the entity API under uvicorn.

Slow clients cannot hold the server (SECURITY C6): idle keep-alive connections close after
``--keep-alive`` seconds, at most ``--limit-concurrency`` connections are served at once
(the rest get 503), and h11 refuses a request head larger than ``--max-head`` bytes.
uvicorn's own proxy-header rewriting is off: ``X-Forwarded-For`` is read only by the API's
rate limiter, and only from ``api.trusted_proxies`` (SECURITY C3).
"""

from __future__ import annotations

import argparse

#: the composition root's factory, named rather than imported (pukara.cli and pukara.server
#: are sibling top-layer modules that do not import each other)
APP_FACTORY = "pukara.server:app_factory"
DEFAULT_KEEP_ALIVE = 5
DEFAULT_CONCURRENCY = 200
DEFAULT_MAX_HEAD = 64 * 1024


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``."""
    parser = subparsers.add_parser("serve", help="run the entity HTTP API")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    parser.add_argument("--keep-alive", type=int, default=DEFAULT_KEEP_ALIVE,
                        help="close idle keep-alive connections after this many seconds")
    parser.add_argument("--limit-concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="most connections served at once; the rest get 503")
    parser.add_argument("--max-head", type=int, default=DEFAULT_MAX_HEAD,
                        help="largest request head (request line and headers) in bytes")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve the app of the composition root until interrupted."""
    import uvicorn

    uvicorn.run(APP_FACTORY, factory=True, host=args.host, port=args.port,
                timeout_keep_alive=args.keep_alive,
                limit_concurrency=args.limit_concurrency,
                h11_max_incomplete_event_size=args.max_head, http="h11",
                proxy_headers=False, server_header=False, log_level="info")
    return 0
