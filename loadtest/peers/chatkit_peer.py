"""The ChatKit peer for the load test: the official `openai-chatkit` ChatKitServer over uvicorn,
with the same scripted reply as the hub (the project's reference backend in
tests/chatkit/reference_server.py, imported, not copied), listening on a given loopback port.

Run with the venv that tests/chatkit/setup.sh installs:
    tests/chatkit/.venv/bin/python loadtest/peers/chatkit_peer.py --port 19200 --deltas 200 --delay-ms 0
"""

import argparse
import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "chatkit"))

import uvicorn  # noqa: E402
from reference_server import MemoryStore, ScriptedServer, build_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--deltas", type=int, default=12)
    ap.add_argument("--delay-ms", type=int, default=40)
    args = ap.parse_args()
    logging.getLogger("chatkit").setLevel(logging.CRITICAL)
    app = build_app(ScriptedServer(MemoryStore(), args.deltas, args.delay_ms))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off", backlog=4096)


if __name__ == "__main__":
    main()
