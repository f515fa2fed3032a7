"""Smaller TLS read buffers for kopf's connections to the API server.

asyncio's TLS transport gives each connection a 256 KiB read buffer, zero-filled when it
connects, so all of it resident. kopf's session keeps up to `max_workers` + 16 + 3 per
watched namespace connections (51 by default, handlers/startup.py): 12.8 MiB of buffers in a
burst of 1,000 Incidents (tracemalloc: `asyncio/sslproto.py`, the largest growth). A TLS
record carries at most 16 KiB, and a read returns what has arrived, so 32 KiB reads lose
nothing but a few more loop turns on the largest responses (a 500-object page of a listing).
"""

from __future__ import annotations

from asyncio import sslproto

READ_BUFFER_BYTES = 32 * 1024


def smaller_tls_reads(size: int = READ_BUFFER_BYTES) -> bool:
    """Cap the read buffer of TLS connections opened from now on. False, and asyncio left as
    it is, where its TLS protocol has no such setting."""
    protocol = getattr(sslproto, "SSLProtocol", None)
    current = getattr(protocol, "max_size", None)
    if protocol is None or not isinstance(current, int):
        return False
    protocol.max_size = min(current, size)
    return True
