"""HTTP to one registry: scheme choice, authentication, retries — on aiohttp's client.

Why aiohttp: it is the most used asyncio HTTP client, well kept (releases every few weeks), and its
C-accelerated HTTP parser streams large bodies at disk speed with bounded memory (`iter_chunked`);
keep-alive pooling, TLS with the system's CA store, redirects and `Range` requests are built in.
httpx was the other candidate: its pure-Python h11 parser costs far more CPU per downloaded
megabyte, which matters on a 2-core machine pulling hundreds of MB. The protocol on top (ping,
challenges, token flow, manifests, blobs, uploads) is ours and lives in this package.

Plain HTTP, as docker decides it: only for registries in `insecure_registries` and for loopback
hosts (localhost, 127.0.0.0/8, ::1); those are tried with HTTPS first (certificate not verified),
then HTTP. Any other registry is HTTPS with verified certificates, and a failure says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urljoin

from ctrd import errdefs
from ctrd.dockerconfig import Credentials
from daemon.distribution import auth, tls
from daemon.distribution.names import is_loopback

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)
T = TypeVar("T")
USER_AGENT = "ctrd/0.1 (distribution)"
# aiohttp (~11 MB of the daemon's memory) is imported by the first registry operation, not at
# start: most daemons never pull.


@dataclass(frozen=True, slots=True)
class Options:
    insecure_registries: frozenset[str] = frozenset()
    attempts: int = 5  # tries per request before one clear error
    backoff: float = 0.25  # seconds before the 2nd try; doubles each time
    connect_timeout: float = 15.0
    read_timeout: float = 60.0  # between two reads of a body, not for the whole body
    certs_dirs: tuple[Path, ...] = tls.DEFAULT_DIRS  # docker's certs.d layout (tls.py)
    upload_chunk: int = 32 << 20  # blobs larger than this are pushed in PATCH chunks of this size
    mirrors: tuple[str, ...] = ()  # Docker Hub mirrors (host[:port] or URL), tried in order before the Hub


class RetryableStatus(Exception):
    """A 5xx (or 429) answer: worth trying again."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(f"{what}: registry answered {status}")
        self.status = status


def _retryable() -> tuple[type[BaseException], ...]:
    import aiohttp

    return (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, ConnectionResetError)


def unauthorized(host: str, what: str) -> errdefs.FailedPrecondition:
    return errdefs.FailedPrecondition(f"unauthorized: authentication required for {what} on {host}", reason="unauthorized")


async def retrying(what: str, opts: Options, attempt: Callable[[int], Awaitable[T]]) -> T:
    """Run `attempt(n)` until it succeeds; retry connection faults and 5xx with backoff."""
    delay = opts.backoff
    retry_on: tuple[type[BaseException], ...] = (*_retryable(), RetryableStatus)
    for n in range(opts.attempts):
        try:
            return await attempt(n)
        except retry_on as exc:
            if n + 1 >= opts.attempts:
                detail = str(exc) or type(exc).__name__
                raise errdefs.Unavailable(f"{what}: giving up after {opts.attempts} attempts: {detail}") from None
            log.info("%s: %s; retrying in %.2f s", what, str(exc) or type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first limit+1 bytes when it is longer (the caller refuses those).

    (`content.read(n)` alone returns what has arrived, which may be less than the body.)"""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf += chunk
        if len(buf) > limit:
            break
    return bytes(buf[: limit + 1])


async def error_message(resp: aiohttp.ClientResponse) -> str:
    """The registry's own error text (`{"errors": [{"code", "message"}]}`), lower-case."""
    import aiohttp

    try:
        body = await read_capped(resp, 64 << 10)
        doc = json.loads(body)
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            msg = str(errs[0].get("message") or errs[0].get("code") or "")
            if msg:
                return msg.lower()
    except (TimeoutError, ValueError, UnicodeError, aiohttp.ClientError):
        pass
    return f"http status {resp.status}"


@dataclass
class Registry:
    """One registry host as seen by one pull/push/login: base URL, challenge, tokens."""

    session: aiohttp.ClientSession
    host: str
    creds: Credentials
    opts: Options
    base: str = ""
    challenge: auth.Challenge | None = None
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def insecure(self) -> bool:
        return self.host in self.opts.insecure_registries or is_loopback(self.host)

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        """False: not verified (insecure registries); else the system's CAs plus certs.d."""
        return False if self.insecure else tls.context_for(self.host, self.opts.certs_dirs)

    # ------------------------------------------------------------ connection and ping
    async def _ping_once(self, base: str) -> aiohttp.ClientResponse:
        return await self.session.get(base + "/v2/", ssl=self.ssl)

    async def ping(self) -> None:
        """GET /v2/: learn the scheme and the auth challenge (once per Registry)."""
        import aiohttp

        async with self._lock:
            if self.base:
                return
            bases = [f"https://{self.host}"] + ([f"http://{self.host}"] if self.insecure else [])

            async def attempt(n: int) -> tuple[str, int, str]:
                last: Exception | None = None
                for base in bases:
                    try:
                        resp = await self._ping_once(base)
                    except aiohttp.ClientConnectorCertificateError as exc:
                        raise errdefs.Unavailable(f"registry {self.host}: tls: {exc.certificate_error}") from None
                    except aiohttp.ClientSSLError as exc:
                        if not self.insecure:  # e.g. an HTTP-only server answering our TLS hello
                            raise errdefs.Unavailable(
                                f"registry {self.host}: https: {exc}; plain HTTP is used only for insecure "
                                "registries (--insecure-registry) and loopback addresses"
                            ) from None
                        last = exc
                        continue
                    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                        last = exc  # refused or reset: the next scheme, then a retry
                        continue
                    async with resp:
                        if resp.status >= 500:
                            raise RetryableStatus(resp.status, f"registry {self.host}")
                        return base, resp.status, resp.headers.get("WWW-Authenticate", "")
                raise last or aiohttp.ClientConnectionError(f"cannot reach {self.host}")

            base, status, header = await retrying(f"registry {self.host}", self.opts, attempt)
            if status == 401:
                challenges = auth.parse_challenges(header)
                self.challenge = next((c for c in challenges if c.scheme in ("bearer", "basic")), None)
                if self.challenge is None:
                    raise errdefs.Unavailable(f"registry {self.host}: unsupported authentication challenge {header[:200]!r}")
            elif status not in (200, 404):  # 404: a registry without /v2/ ping; carry on
                raise errdefs.Unavailable(f"registry {self.host}: /v2/ answered http status {status}")
            self.base = base

    # ------------------------------------------------------------ authentication
    async def _fetch_token(self, challenge: auth.Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise errdefs.Unavailable(f"registry {self.host}: bearer challenge has no usable realm: {realm[:200]!r}")
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        query += [("scope", s) for s in scope.split(" ") if s]
        if self.creds:
            query += [("account", self.creds.username), ("client_id", "ctrd")]
        headers = {"Authorization": auth.basic_header(self.creds)} if self.creds.username else {}
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)

        async def attempt(n: int) -> str:
            async with self.session.get(url, headers=headers, ssl=self.ssl) as resp:
                if resp.status in (401, 403):
                    raise unauthorized(self.host, scope or "login")
                if resp.status >= 500:
                    raise RetryableStatus(resp.status, f"token server {realm}")
                if resp.status != 200:
                    raise errdefs.Unavailable(f"token server {realm}: {await error_message(resp)}")
                try:
                    doc = json.loads(await read_capped(resp, 1 << 20))
                except (ValueError, UnicodeError):
                    doc = None
            token = auth.token_from(doc)
            if not token:
                raise errdefs.Unavailable(f"token server {realm}: answer has no token")
            return token

        return await retrying(f"token server {realm}", self.opts, attempt)

    async def authorization(self, scope: str, fresh: bool = False) -> str:
        """The Authorization header value for `scope` ("" when the registry asks for none)."""
        await self.ping()
        ch = self.challenge
        if ch is None:
            return ""
        if ch.scheme == "basic":
            if not self.creds.username:
                raise unauthorized(self.host, scope or "login")
            return auth.basic_header(self.creds)
        if fresh or scope not in self._tokens:
            self._tokens[scope] = await self._fetch_token(ch, scope)
        return "Bearer " + self._tokens[scope]

    def _learn(self, resp: aiohttp.ClientResponse) -> None:
        """A 401 may carry a new challenge (another realm or scope): remember it."""
        for ch in auth.parse_challenges(resp.headers.get("WWW-Authenticate", "")):
            if ch.scheme in ("bearer", "basic"):
                self.challenge = ch
                return

    # ------------------------------------------------------------ requests
    def url(self, path: str) -> str:
        return urljoin(self.base + "/", path.lstrip("/")) if not path.startswith(("http://", "https://")) else path

    @asynccontextmanager
    async def request(
        self, method: str, path: str, scope: str, headers: dict[str, str] | None = None, data: Any = None,
        allow_redirects: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request with auth (a 401 refreshes the token once); the caller checks the status.

        No retries here: the caller knows whether the request is idempotent (wrap it in
        `retrying`), and 5xx answers are returned like any other status."""
        await self.ping()
        hdrs = dict(headers or {})
        for fresh in (False, True):
            authz = await self.authorization(scope, fresh)
            if authz:
                hdrs["Authorization"] = authz
            resp = await self.session.request(
                method, self.url(path), headers=hdrs, data=data, allow_redirects=allow_redirects,
                ssl=self.ssl,
            )
            if resp.status == 401 and not fresh and (data is None or isinstance(data, bytes)):
                self._learn(resp)
                resp.release()
                continue
            if resp.status == 401:
                resp.release()
                raise unauthorized(self.host, scope or path)
            try:
                yield resp
            finally:
                resp.release()
            return


def new_session(opts: Options) -> aiohttp.ClientSession:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=opts.connect_timeout, sock_read=opts.read_timeout)
    # limit_per_host: three layers plus the manifest/config/token requests of the same pull
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=8)
    # read_bufsize: a 1 MiB socket buffer per response (aiohttp pauses reading at twice that), so
    # blob bodies arrive in large pieces and memory stays bounded whatever the layer size
    return aiohttp.ClientSession(timeout=timeout, connector=connector, headers={"User-Agent": USER_AGENT},
                                 trust_env=False, auto_decompress=False, read_bufsize=1 << 20)


async def login(session: aiohttp.ClientSession, host: str, creds: Credentials, opts: Options) -> str:
    """Check `creds` against `host` (what `docker login` does): ping, authenticate, ping again."""
    reg = Registry(session, host, creds, opts)
    await reg.ping()
    if reg.challenge is None:
        return "Login Succeeded"
    try:
        async with reg.request("GET", "/v2/", "") as resp:
            if resp.status != 200:
                raise errdefs.Unavailable(f"login to {host}: {await error_message(resp)}")
    except errdefs.FailedPrecondition as exc:
        if exc.reason != "unauthorized":
            raise
        raise errdefs.FailedPrecondition(f"unauthorized: incorrect username or password for {host}",
                                         reason="unauthorized") from None
    return "Login Succeeded"
