"""The Toxiproxy adapter: the only module of the harness that imports the Toxiproxy client.

Why an adapter around toxiproxy-python rather than the client itself:
- the client sets no timeout on its HTTP calls, so a hung server would hang the
  harness; every call here is bounded;
- it keeps its server address in class attributes (one server per process) and
  answers a server error with a `KeyError` or a JSON error; here every failure
  becomes a `FaultError` that says what was asked and what the server answered;
- it has no call to update a toxic, so that one goes to the same HTTP API.

Never import this module before Locust in one process: toxiproxy-python pulls in
requests/urllib3, and `import locust` crashes after that. Locust runs in its own
process for that reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
from toxiproxy import api as _client_api
from toxiproxy import proxy as _client_proxy
from toxiproxy import server as _client_server
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import FaultError
from harness.faults.schedule import TOXIC_ATTRIBUTES, Direction, ToxicType

__all__ = ["ToxiproxyAdapter", "ProxyInfo", "ToxicInfo", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 5.0


class _BoundedConsumer(_client_api.APIConsumer):
    """The client's HTTP layer with a timeout on every request and server errors raised, not parsed."""

    timeout_s = DEFAULT_TIMEOUT_S

    @classmethod
    def _checked(cls, response: requests.Response) -> requests.Response:
        if response.status_code >= 500:
            raise FaultError(
                f"Toxiproxy at {cls.host}:{cls.port} answered {response.status_code} "
                f"to {response.request.method} {urlparse(response.url).path}: {response.text.strip()[:300]}"
            )
        return response

    @classmethod
    def get(cls, url, params=None, **kwargs):
        kwargs.setdefault("timeout", cls.timeout_s)
        return cls._checked(super().get(url, params=params, **kwargs))

    @classmethod
    def post(cls, url, data=None, json=None, **kwargs):
        kwargs.setdefault("timeout", cls.timeout_s)
        return cls._checked(super().post(url, data=data, json=json, **kwargs))

    @classmethod
    def delete(cls, url, **kwargs):
        kwargs.setdefault("timeout", cls.timeout_s)
        return cls._checked(super().delete(url, **kwargs))


# The client modules look APIConsumer up by name at call time: point them at ours.
_client_server.APIConsumer = _BoundedConsumer
_client_proxy.APIConsumer = _BoundedConsumer

# The client's address is process-wide state; one lock keeps two adapters apart.
_CLIENT_LOCK = threading.RLock()


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the server reports it."""

    name: str
    listen: str
    upstream: str
    enabled: bool

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it."""

    proxy: str
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, float]


class ToxiproxyAdapter:
    """Bounded, clearly-failing access to one Toxiproxy server."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise FaultError(f"Toxiproxy URL {url!r} needs a host and a port, e.g. http://127.0.0.1:8474")
        self.url = f"http://{parsed.hostname}:{parsed.port}"
        self.host = parsed.hostname
        self.port = parsed.port
        self.timeout_s = timeout_s
        self._server = _client_server.Toxiproxy()

    # -- plumbing -----------------------------------------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one client call against this server, bounded, with its errors made clear."""
        with _CLIENT_LOCK:
            _BoundedConsumer.host = self.host
            _BoundedConsumer.port = self.port
            _BoundedConsumer.timeout_s = self.timeout_s
            try:
                return fn(*args, **kwargs)
            except FaultError:
                raise
            except requests.Timeout as exc:
                raise FaultError(f"{what}: Toxiproxy at {self.url} did not answer within {self.timeout_s:g} s") from exc
            except requests.ConnectionError as exc:
                raise FaultError(f"{what}: cannot reach Toxiproxy at {self.url} (is the server running?)") from exc
            except ProxyExists as exc:
                raise FaultError(f"{what}: already exists ({_text(exc)})") from exc
            except NotFound as exc:
                raise FaultError(f"{what}: not found ({_text(exc)})") from exc
            except InvalidToxic as exc:
                raise FaultError(f"{what}: Toxiproxy refused it as invalid ({_text(exc)})") from exc
            except (KeyError, ValueError, TypeError) as exc:
                raise FaultError(f"{what}: Toxiproxy's answer could not be read ({type(exc).__name__}: {exc})") from exc

    def _http(self, method: str, path: str, what: str, json: dict | None = None) -> requests.Response:
        """A direct API call for what the client lacks (updating a toxic)."""

        def send():
            response = requests.request(method, self.url + path, json=json, timeout=self.timeout_s)
            if response.status_code == 404:
                raise NotFound(response.content)
            if response.status_code == 400:
                raise InvalidToxic(response.content)
            return _BoundedConsumer._checked(response)

        return self._call(what, send)

    # -- server ---------------------------------------------------------------------

    def version(self) -> str:
        response = self._call("version", _BoundedConsumer.get, "/version")
        return response.text.strip()

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (the heal-all at the end of a run)."""
        self._call("reset", _BoundedConsumer.post, "/reset")

    # -- proxies --------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyInfo]:
        found = self._call("list proxies", self._server.proxies)
        return {name: ProxyInfo(p.name, p.listen, p.upstream, bool(p.enabled)) for name, p in found.items()}

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> ProxyInfo:
        """Create a proxy listening on loopback in front of upstream (host:port); replaces one of the same name."""
        if not listen.startswith(("127.", "localhost")):
            raise FaultError(f"proxy {name}: listen address {listen!r} is not on loopback; use 127.0.0.1:<port>")
        existing = self.proxies().get(name)
        if existing is not None:
            self.delete_proxy(name)
        created = self._call(f"create proxy {name}", self._server.create, upstream=upstream, name=name, listen=listen)
        return ProxyInfo(created.name, created.listen, created.upstream, bool(created.enabled))

    def delete_proxy(self, name: str) -> None:
        self._http("DELETE", f"/proxies/{name}", f"delete proxy {name}")

    def _proxy(self, name: str):
        proxy = self._call(f"find proxy {name}", self._server.get_proxy, name)
        if proxy is None:
            known = ", ".join(sorted(self.proxies())) or "none"
            raise FaultError(f"proxy {name!r} does not exist (proxies: {known})")
        return proxy

    def disable(self, name: str) -> None:
        """Take a link down: the proxy stops listening and drops its connections."""
        self._call(f"disable proxy {name}", self._proxy(name).disable)

    def enable(self, name: str) -> None:
        self._call(f"enable proxy {name}", self._proxy(name).enable)

    # -- toxics ---------------------------------------------------------------------

    def add_toxic(
        self,
        proxy: str,
        toxic: ToxicType,
        attributes: Mapping[str, int],
        direction: Direction = Direction.DOWNSTREAM,
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic; returns its name (by default `<type>_<direction>`)."""
        unknown = set(attributes) - set(TOXIC_ATTRIBUTES[toxic])
        if unknown:
            raise FaultError(
                f"{toxic.value} toxic: unknown attribute(s) {sorted(unknown)}; use {sorted(TOXIC_ATTRIBUTES[toxic])}"
            )
        for key, value in attributes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FaultError(f"{toxic.value} toxic: {key} must be a whole number >= 0, got {value!r}")
        if not 0.0 <= toxicity <= 1.0:
            raise FaultError(f"{toxic.value} toxic: toxicity must be within [0, 1], got {toxicity!r}")
        toxic_name = name or f"{toxic.value}_{direction.value}"
        target = self._proxy(proxy)
        self._call(
            f"add {toxic.value} toxic to {proxy}",
            target.add_toxic,
            type=toxic.value,
            stream=direction.value,
            name=toxic_name,
            toxicity=toxicity,
            attributes=dict(attributes),
        )
        return toxic_name

    def update_toxic(self, proxy: str, name: str, attributes: Mapping[str, int], toxicity: float | None = None) -> None:
        """Change a toxic's attributes in place (the client has no call for this)."""
        body: dict = {"attributes": dict(attributes)}
        if toxicity is not None:
            body["toxicity"] = toxicity
        self._http("POST", f"/proxies/{proxy}/toxics/{name}", f"update toxic {name} on {proxy}", json=body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call(f"remove toxic {name} from {proxy}", self._proxy(proxy).destroy_toxic, name)

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        found = self._call(f"list toxics of {proxy}", self._proxy(proxy).toxics)
        return [
            ToxicInfo(proxy, t.name, t.type, t.stream, float(t.toxicity), dict(t.attributes)) for t in found.values()
        ]

    def all_toxics(self) -> Iterator[ToxicInfo]:
        for name in self.proxies():
            yield from self.toxics(name)


def _text(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return str(raw).strip()[:300]
