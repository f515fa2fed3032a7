"""kopf's TLS connections read through 32 KiB buffers (handlers/tls_reads.py): a real TLS
server and aiohttp client, as kopf uses them, carry a response far larger than the buffer,
byte for byte, and each connection holds the small buffer only."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import ssl
from asyncio import sslproto
from pathlib import Path

import aiohttp
from aiohttp import web

from localkube.certs import generate_pki
from mitigator.handlers.tls_reads import READ_BUFFER_BYTES, smaller_tls_reads

PAYLOAD = bytes(range(256)) * (3 * 4096)  # 3 MiB, not one repeated byte


def test_a_large_response_arrives_whole_through_small_reads(tmp_path: Path) -> None:
    assert smaller_tls_reads()
    assert sslproto.SSLProtocol.max_size == READ_BUFFER_BYTES
    pki = generate_pki(tmp_path / "pki")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(pki.serving_cert, pki.serving_key)
    client_context = ssl.create_default_context(cafile=str(pki.ca_cert))

    async def payload(_: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD)

    async def scenario() -> tuple[bytes, list[int]]:
        app = web.Application()
        app.router.add_get("/", payload)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                url = f"https://localhost:{port}/"
                async with session.get(url, ssl=client_context) as response:
                    body = await response.read()
                buffers = [
                    len(getattr(obj, "_ssl_buffer", b""))
                    for obj in gc.get_objects()
                    if isinstance(obj, sslproto.SSLProtocol)
                ]
        finally:
            await runner.cleanup()
        return body, buffers

    body, buffers = asyncio.run(scenario())
    assert hashlib.sha256(body).digest() == hashlib.sha256(PAYLOAD).digest()
    assert buffers and all(0 < size <= READ_BUFFER_BYTES for size in buffers), buffers
