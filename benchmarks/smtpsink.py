"""A local SMTP server that accepts and counts every message: `python -m benchmarks.smtpsink`.

An aiosmtpd `Controller` on 127.0.0.1 and a free port, in its own process so that it does not share the
relay's interpreter lock. It prints its port on the first line of stdout, then answers each `count` line on
stdin with the number of messages received so far; it stops when stdin closes.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    """Accepts every message and counts them."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        """Accept the message."""
        self.received += 1
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    """Serve until stdin closes."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        print(controller.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(sink.received, flush=True)
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
