"""How a lab remote reaches the control plane's APIs: what a load balancer's address is in
a cloud. It listens on 127.0.0.1 at each port given and relays every connection to the
first cluster node that accepts it (the last one that did first), so a remote's
nova-compute uses the same nova.conf as the cluster nodes' (Keystone, placement and the
stand-ins at 127.0.0.1) and keeps working while a cluster node is down.

Standard library only, run by Pacemaker on every remote (lab/remote-computes.yaml):

    python3 -I api_relay.py --to 10.77.0.1,10.77.0.2,10.77.0.3 5000 8778 9292 9696
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable

LISTEN = "127.0.0.1"
CONNECT_TIMEOUT = 1.0  # a cut node answers nothing: the next one is tried after this
CHUNK = 65536


class Relay:
    """Connections to `port` on 127.0.0.1 relayed to the first of `upstreams` that accepts."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self.preferred = 0  # index of the upstream that accepted last

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        count = len(self.upstreams)
        for step in range(count):
            index = (self.preferred + step) % count
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                opened = asyncio.open_connection(self.upstreams[index], port)
                streams = await asyncio.wait_for(opened, CONNECT_TIMEOUT)
                self.preferred = index
                return streams
        return None

    def handler(
        self, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream = await self.connect(port)
            if upstream is None:  # no node answers: the client sees the connection close
                writer.close()
                return
            up_reader, up_writer = upstream
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        return handle


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file or an error, then close the writing side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def serve(upstreams: list[str], ports: list[int]) -> None:
    relay = Relay(upstreams)
    servers = [await asyncio.start_server(relay.handler(p), LISTEN, p) for p in ports]
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", required=True, help="the cluster nodes' addresses, comma-separated")
    parser.add_argument("ports", nargs="+", type=int)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.to.split(","), args.ports))


if __name__ == "__main__":
    main()
