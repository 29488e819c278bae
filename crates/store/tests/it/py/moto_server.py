"""Runs moto's S3-compatible server on loopback for the store's integration tests.

Usage: python3 moto_server.py

Binds 127.0.0.1 on a port the OS picks (no race for a "free" port), prints `PORT <n>` on
stdout, then serves until its standard input closes: the Rust test holds the pipe, so the
server goes away with the test process even if that is killed.
"""

import sys


def main() -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as e:  # pragma: no cover - reported by the Rust side
        print(
            f"MISSING {e}",
            flush=True,
        )
        return 3
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"PORT {port}", flush=True)
    # Block until the parent closes our stdin (or dies).
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
