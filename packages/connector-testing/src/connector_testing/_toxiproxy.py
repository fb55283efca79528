"""A small client for Toxiproxy's HTTP API (https://github.com/Shopify/toxiproxy)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


class ToxiproxyError(RuntimeError):
    """Toxiproxy's API answered with an error."""


class ToxiproxyClient:
    """Manage proxies and toxics (latency, timeout, reset_peer, bandwidth, ...).

    >>> tp = ToxiproxyClient("http://127.0.0.1:8474")
    >>> with tp.toxic("postgres", "latency", latency=500):
    ...     ...  # every byte from PostgreSQL now arrives 500 ms late
    """

    def __init__(self, url: str = "http://127.0.0.1:8474", *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        if response.status_code >= 400:
            raise ToxiproxyError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def version(self) -> str:
        return str(self._http.get("/version").text)

    def proxies(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/proxies")
        return result

    def proxy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/proxies/{name}")
        return result

    def create_proxy(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        """Create (or replace) a proxy from ``listen`` to ``upstream`` (host:port)."""
        existing = self.proxies()
        if name in existing:
            self._call("DELETE", f"/proxies/{name}")
        result: dict[str, Any] = self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )
        return result

    def delete_proxy(self, name: str) -> None:
        """Delete the proxy ``name`` (its connections are closed)."""
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disable a proxy (every connection through it is cut) or enable it again."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> str:
        """Add a toxic (``latency``, ``timeout``, ``reset_peer``, ``bandwidth``,
        ``slow_close``, ``slicer``, ``limit_data``); returns its name."""
        toxic_name = name or f"{type}_{stream}_{uuid.uuid4().hex[:8]}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": toxic_name,
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return toxic_name

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/proxies/{proxy}/toxics")
        return result

    def reset(self) -> None:
        """Remove every toxic and enable every proxy."""
        self._call("POST", "/reset")

    @contextmanager
    def toxic(self, proxy: str, type: str, **kwargs: Any) -> Iterator[str]:
        """Add a toxic for the duration of a ``with`` block."""
        name = self.add_toxic(proxy, type, **kwargs)
        try:
            yield name
        finally:
            self.remove_toxic(proxy, name)

    @contextmanager
    def disabled(self, proxy: str) -> Iterator[None]:
        """Cut the proxy for the duration of a ``with`` block."""
        self.set_enabled(proxy, False)
        try:
            yield
        finally:
            self.set_enabled(proxy, True)
