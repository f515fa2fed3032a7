"""HTTP to the API server over one pooled urllib3 connection manager: JSON in, JSON out.

Not the kubernetes package: importing it (about 700 generated model classes) costs a process
about 20 MB, and kopf imports it too whenever it is importable. This module sends what that
client sent for the calls mitigator makes (same paths, content types, retries and timeouts)
and raises `HttpError` where it raised `ApiException`."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
import urllib3.exceptions

from mitigator.models import JsonObject

log = logging.getLogger(__name__)

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class HttpError(Exception):
    """A non-2xx answer of the API server (status 0: the TLS handshake failed). Carries no
    request headers: the credentials never reach an error."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason
        self.body = body


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is and how to prove who we are (a kubeconfig's cluster and user,
    or a ServiceAccount's). `*_data` are PEM or base64 of PEM, as kubeconfigs carry them."""

    server: str
    ca_path: str | None = None
    ca_data: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_data: str | None = field(default=None, repr=False)
    private_key_path: str | None = None
    private_key_data: str | None = field(default=None, repr=False)
    # The whole Authorization header ("Bearer ...", "Basic ..."); None: none sent.
    authorization: str | None = field(default=None, repr=False)
    insecure: bool = False
    # More headers on every request (tests impersonate a ServiceAccount with one).
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def api_path(
    group_version: str,
    plural: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a collection or an object: core/v1 ("v1") under /api, the rest
    (e.g. "apps/v1") under /apis."""
    parts = ["/api" if "/" not in group_version else "/apis", group_version]
    if namespace is not None:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def url_of(server: str, path: str, query: Mapping[str, str | int | None] | None) -> str:
    """The server's URL with the path and the query's set values (an empty selector is no
    selector: left out)."""
    url = server.rstrip("/") + path
    pairs = [(key, value) for key, value in (query or {}).items() if value not in (None, "")]
    return f"{url}?{urlencode(pairs)}" if pairs else url


def patch_content_type(patch: object) -> str:
    """What the kubernetes client sent for a patch: a list is a JSON patch, an object a JSON
    merge patch."""
    return JSON_PATCH if isinstance(patch, list) else MERGE_PATCH


def encode(body: object) -> bytes:
    return json.dumps(body, default=_jsonable).encode()


def _jsonable(value: object) -> str:
    if isinstance(value, date):  # datetime too: what the kubernetes client sent
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


Login = Callable[[], Endpoint]
Connection = tuple[Endpoint, urllib3.PoolManager]
Timeout = float | None


class Transport:
    """Requests to one API server, `pool_size` connections kept open for reuse (more at a
    time are opened and closed: never waited for). On a 401 it logs in again once (a
    ServiceAccount's token is rotated on disk) and repeats the request once."""

    def __init__(
        self,
        login: Login,
        *,
        pool_size: int,
        retries: urllib3.Retry | int | bool | None = None,
    ) -> None:
        self._login = login
        self._pool_size = max(pool_size, 1)
        # None: urllib3's default (3 retries of a failed connection), as the client had.
        self._retries = retries
        self._lock = threading.Lock()
        # Replaced whole on a new login: a request reads the pair once.
        self._connection = self._connect()

    @property
    def server(self) -> str:
        return self._connection[0].server

    def request(self, method: str, path: str, **how: Any) -> JsonObject:
        """The answer's JSON object (`how`: as `request_bytes`); `HttpError` for any other
        status than 2xx."""
        return dict(json.loads(self.request_bytes(method, path, **how)))

    def request_bytes(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        body: object = None,
        content_type: str | None = None,
        timeout: Timeout = None,
        accept: str = JSON,
    ) -> bytes:
        """The answer's body as it came (a pod's log is text, not JSON)."""
        payload = None if body is None else encode(body)
        how: dict[str, Any] = {"query": query, "payload": payload, "timeout": timeout}
        how.update(content_type=content_type or JSON, accept=accept)
        connection = self._connection
        response = self._send(*connection, method, path, **how)
        if response.status == 401:
            response = self._send(*self._relogin(connection), method, path, **how)
        if not 200 <= response.status <= 299:
            raise HttpError(
                response.status,
                str(response.reason or ""),
                response.data.decode("utf-8", errors="replace"),
            )
        return bytes(response.data)

    def open_stream(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        accept: str = JSON,
        read_timeout: float,
    ) -> urllib3.BaseHTTPResponse:
        """A GET whose answer is read as it comes (a watch): the response, not yet read; the
        caller closes it. `HttpError` for any other status than 2xx."""
        how: dict[str, Any] = {"query": query, "payload": None, "timeout": None}
        how.update(content_type=JSON, accept=accept, stream=True, read_timeout=read_timeout)
        connection = self._connection
        response = self._send(*connection, "GET", path, **how)
        if response.status == 401:
            response.release_conn()
            response = self._send(*self._relogin(connection), "GET", path, **how)
        if not 200 <= response.status <= 299:
            body = response.read()
            response.release_conn()
            raise HttpError(
                response.status,
                str(response.reason or ""),
                body.decode("utf-8", errors="replace"),
            )
        return response

    def close(self) -> None:
        self._connection[1].clear()

    # ------------------------------------------------------------ internals

    def _send(
        self,
        endpoint: Endpoint,
        pool: urllib3.PoolManager,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None,
        payload: bytes | None,
        content_type: str,
        timeout: Timeout,
        accept: str = JSON,
        stream: bool = False,
        read_timeout: Timeout = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": accept, "User-Agent": "mitigator", **endpoint.headers}
        if payload is not None:
            headers["Content-Type"] = content_type
        if endpoint.authorization:
            headers["Authorization"] = endpoint.authorization
        how: dict[str, Any] = {}
        if timeout is not None:
            how["timeout"] = urllib3.Timeout(total=timeout)
        if stream:
            # A watch stays open for minutes: no total, a bound on the silence between reads.
            how["timeout"] = urllib3.Timeout(connect=30.0, read=read_timeout)
            how["preload_content"] = False
        if self._retries is not None:
            how["retries"] = self._retries
        try:
            return pool.request(
                method,
                url_of(endpoint.server, path, query),
                body=payload,
                headers=headers,
                **how,
            )
        except urllib3.exceptions.SSLError as exc:
            # As the kubernetes client answered a failed handshake: status 0, not a transport
            # error (other urllib3 errors leave as they did: callers catch HTTPError).
            raise HttpError(0, f"{type(exc).__name__}\n{exc}") from exc

    def _relogin(self, failed: Connection) -> Connection:
        """Read the credentials again, once for all the requests that failed on the same
        ones (threads that meet the same 401 at once)."""
        with self._lock:
            if self._connection is failed:
                self._connection = self._connect()
                log.info("API server answered 401: credentials read again")
                failed[1].clear()
            return self._connection

    def _connect(self) -> Connection:
        endpoint = self._login()
        pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=self._pool_size,
            block=False,
            ssl_context=ssl_context(endpoint),
        )
        return endpoint, pool


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Trust the endpoint's CA (the system's if it names none), present its client
    certificate if any; `insecure` verifies nothing (kubeconfig's insecure-skip-tls-verify)."""
    context = ssl.create_default_context(
        cafile=endpoint.ca_path,
        cadata=None if endpoint.ca_data is None else pem(endpoint.ca_data),
    )
    if endpoint.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with ExitStack() as stack:
        # ssl loads a certificate and key only from files: data goes through a temporary
        # one, removed once loaded.
        cert = endpoint.certificate_path or _temporary(stack, endpoint.certificate_data)
        key = endpoint.private_key_path or _temporary(stack, endpoint.private_key_data)
        if cert:
            context.load_cert_chain(cert, key)
    return context


def pem(data: str) -> str:
    """PEM as it is, else base64 of PEM (a kubeconfig's `*-data`) decoded."""
    if data.lstrip().startswith("-----BEGIN"):
        return data
    return base64.b64decode(data).decode("ascii")


def _temporary(stack: ExitStack, data: str | None) -> str | None:
    if data is None:
        return None
    # Readable by this user only (mkstemp's mode), removed when the stack closes.
    handle = stack.enter_context(tempfile.NamedTemporaryFile(mode="w", suffix=".pem"))  # noqa: SIM115
    handle.write(pem(data))
    handle.flush()
    return handle.name
