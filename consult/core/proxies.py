"""The client's address behind a reverse proxy, believed only from the proxy itself.

``ProxyFix`` takes the client's address and scheme from ``X-Forwarded-For``/``-Proto``, which
anyone can send. Behind nginx that is right, but a client that reaches gunicorn directly (a
port left open, another host on the network) could claim any address and so step around every
per-address limit. ``TrustedProxyFix`` applies ``ProxyFix`` only to requests whose peer is one
of the configured proxy addresses (``TRUSTED_PROXY_ADDRESSES``; a Unix socket, which only local
processes can reach, counts as trusted); every other request keeps its own peer address.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | Iterable[str]) -> list[Network]:
    """'127.0.0.1, 10.0.0.0/24' → networks; raises ValueError on anything else."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


def is_trusted(peer: str | None, networks: list[Network]) -> bool:
    """Whether a request from ``peer`` comes from a trusted proxy."""
    if not peer or peer.startswith("unix:"):
        return True  # a Unix socket: only processes on this host can connect
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


class TrustedProxyFix:
    """WSGI middleware: ``ProxyFix`` for requests from the trusted proxies, nothing for others."""

    def __init__(self, app: Any, proxies: int, addresses: str | Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=proxies, x_proto=proxies)
        self.networks = parse_networks(addresses)
        self._warned = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        peer = environ.get("REMOTE_ADDR")
        if is_trusted(peer, self.networks):
            return self.fixed(environ, start_response)
        if "HTTP_X_FORWARDED_FOR" in environ and not self._warned:
            # Once per process: a proxy left out of TRUSTED_PROXY_ADDRESSES would otherwise
            # make every visitor count as the proxy's one address.
            self._warned = True
            log.warning("X-Forwarded-For from %s ignored: that address is not in "
                        "TRUSTED_PROXY_ADDRESSES.", peer)
        return self.app(environ, start_response)
