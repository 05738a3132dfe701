"""A fast local SMTP sink for benchmarks: accepts everything, keeps nothing, counts messages.

Run it as its own process so it does not share the GIL with the client being measured::

    python bench/sink.py [--port 0]     # prints "listening PORT", serves until killed

It speaks just enough ESMTP for smtplib, cohesion-mail and mailmerge (EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT; PIPELINING, 8BITMIME, SMTPUTF8 advertised), reads each message's DATA
in bulk (one search for ``CRLF.CRLF`` per network read, no per-line work) and answers 250 at
once. ``XSTAT`` answers ``250 <messages> <bytes> <connections> <first> <last>`` (the times of
the first and last message, ``time.time()``); ``XRESET`` zeroes the counters.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

EHLO = (
    b"250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    b"250-SIZE 104857600\r\n250 HELP\r\n"
)


class Counters:
    messages = 0
    bytes = 0
    connections = 0
    first = 0.0  # time.time() of the first and last message since the last XRESET
    last = 0.0


class SinkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.in_data = False
        self.scanned = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        Counters.connections += 1
        transport.write(b"220 sink.localhost ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = bytearray()
        assert self.transport is not None
        while True:
            if self.in_data:
                if self.buf.startswith(b".\r\n"):  # an empty body
                    end, skip = 0, 3
                else:
                    # Resume the search where the last read stopped (the terminator can
                    # straddle two reads), so a large message is scanned once, not per read.
                    end = self.buf.find(b"\r\n.\r\n", self.scanned)
                    if end < 0:
                        self.scanned = max(0, len(self.buf) - 4)
                        break
                    skip = end + 5
                self.scanned = 0
                Counters.messages += 1
                Counters.bytes += end
                Counters.last = time.time()
                if Counters.messages == 1:
                    Counters.first = Counters.last
                del self.buf[:skip]
                self.in_data = False
                out += b"250 2.0.0 Ok: queued as sink\r\n"
                continue
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                break
            line = bytes(self.buf[:line_end])
            del self.buf[: line_end + 2]
            verb = line[:4].upper()
            if verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out += b"250 2.0.0 Ok\r\n"
            elif verb == b"EHLO":
                out += EHLO
            elif verb == b"HELO":
                out += b"250 sink.localhost\r\n"
            elif verb == b"DATA":
                self.in_data = True
                out += b"354 End data with <CR><LF>.<CR><LF>\r\n"
            elif verb == b"QUIT":
                out += b"221 2.0.0 Bye\r\n"
                self.transport.write(bytes(out))
                self.transport.close()
                return
            elif line.upper() == b"XSTAT":
                c = Counters
                out += f"250 {c.messages} {c.bytes} {c.connections} {c.first} {c.last}\r\n".encode()
            elif line.upper() == b"XRESET":
                Counters.messages = Counters.bytes = Counters.connections = 0
                Counters.first = Counters.last = 0.0
                out += b"250 2.0.0 Reset\r\n"
            else:
                out += b"502 5.5.2 Command not implemented\r\n"
        if out:
            self.transport.write(bytes(out))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port, backlog=64)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
