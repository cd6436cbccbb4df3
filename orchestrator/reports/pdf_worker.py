"""A long-lived process that lays out PDFs: HTML in on stdin, PDF out on stdout.

It runs as ``python -m orchestrator.reports.pdf_worker`` so that nothing of the calling program
is imported again (a ``multiprocessing`` spawn would re-run the caller's main module). Framing,
both ways: an 8-byte big-endian length, then that many bytes. A request is UTF-8 HTML; an answer
starts with one status byte (0: the PDF follows, 1: an error message follows). The worker ends
when its stdin closes, which is also what happens when the platform process dies.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import IO

HEADER = struct.Struct(">Q")


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: IO[bytes], body: bytes) -> None:
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    from orchestrator.reports.pdf import layout_pdf

    while (request := read_frame(requests)) is not None:
        try:
            answer = b"\0" + layout_pdf(request.decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who falls back
            answer = b"\1" + f"{type(exc).__name__}: {exc}".encode()
        write_frame(answers, answer)


def main() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin.buffer, answers)
    except BrokenPipeError:
        # The process that asked is gone (killed mid-report): nobody is left to answer.
        os._exit(0)


if __name__ == "__main__":
    main()
