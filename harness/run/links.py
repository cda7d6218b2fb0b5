"""The system's network links, each through its own Toxiproxy proxy, and the URLs that dial them.

Why every link gets a proxy even when no fault is scheduled: the path the
system takes must be the same in a fault-free baseline and in a chaos run, or
the comparison measures the proxy rather than the fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

from harness.faults.schedule import Link

__all__ = ["LinkPlan", "plan_links", "with_port"]


def with_port(url: str, port: int, host: str = "127.0.0.1") -> str:
    """The same URL (scheme, user, path) pointed at host:port."""
    parsed = urlparse(url)
    user = f"{parsed.username}@" if parsed.username else ""
    return urlunparse(parsed._replace(netloc=f"{user}{host}:{port}"))


def _hostport(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port}"


@dataclass(frozen=True)
class LinkPlan:
    """Proxy names by link, and the URL each side of the system should dial."""

    proxies: dict[Link, str]
    api_url_for_clients: str  # through client_api
    api_redis_url: str
    consumer_redis_url: str
    consumer_postgres_url: str


def plan_links(adapter, redis_url: str, postgres_url: str, api_port: int) -> LinkPlan:
    """Create the four proxies on loopback (replacing any of the same name) and return where they listen."""
    upstreams = {
        Link.CLIENT_API: f"127.0.0.1:{api_port}",
        Link.API_REDIS: _hostport(redis_url),
        Link.CONSUMER_REDIS: _hostport(redis_url),
        Link.CONSUMER_POSTGRES: _hostport(postgres_url),
    }
    ports: dict[Link, int] = {}
    for link, upstream in upstreams.items():
        ports[link] = adapter.create_proxy(link.value, upstream).listen_port
    return LinkPlan(
        proxies={link: link.value for link in upstreams},
        api_url_for_clients=f"http://127.0.0.1:{ports[Link.CLIENT_API]}",
        api_redis_url=with_port(redis_url, ports[Link.API_REDIS]),
        consumer_redis_url=with_port(redis_url, ports[Link.CONSUMER_REDIS]),
        consumer_postgres_url=with_port(postgres_url, ports[Link.CONSUMER_POSTGRES]),
    )


def direct_links(redis_url: str, postgres_url: str, api_port: int) -> LinkPlan:
    """No Toxiproxy (attach mode without it): every side dials the service directly."""
    return LinkPlan(
        proxies={},
        api_url_for_clients=f"http://127.0.0.1:{api_port}",
        api_redis_url=redis_url,
        consumer_redis_url=redis_url,
        consumer_postgres_url=postgres_url,
    )


__all__ += ["direct_links"]
