"""Toxiproxy's HTTP API over rtplay's proxies, so Toxiproxy's clients drive rtplay unchanged.

Routes, JSON shapes and status codes follow Toxiproxy's README ("HTTP API"):
``GET /version``; ``GET/POST /proxies``; ``GET/POST/DELETE /proxies/{proxy}``;
``GET/POST /proxies/{proxy}/toxics``; ``GET/POST/DELETE /proxies/{proxy}/toxics/{toxic}``;
``POST /reset``; ``POST /populate``. Errors are ``{"error": "...", "status": N}``: 404 for an
unknown proxy or toxic, 409 for a duplicate name, 400 for a bad toxic or proxy. rtplay adds
``GET /proxies/{proxy}/wire`` (what the wire showed) and its own toxic types
(:mod:`rtplay.proxy.toxics`).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from rtplay.proxy.faults import ToxicExists, ToxicNotFound
from rtplay.proxy.guard import ApiError, ApiGuard, read_json
from rtplay.proxy.proxy import FaultProxy, ProxyConfigError
from rtplay.proxy.toxics import ToxicError, parse_toxic
from rtplay.runtime.loopback import is_loopback_host
from rtplay.runtime.serverlog import server_logger
from rtplay.runtime.token import new_token

log = logging.getLogger(__name__)

#: Toxiproxy's default API port.
DEFAULT_API_PORT = 8474

#: The Toxiproxy API version this one follows (its clients only print it).
TOXIPROXY_VERSION = "2.12.0"

#: Proxies one API may hold: each is a listener and an upstream pool.
MAX_PROXIES = 256


class ProxyRegistry:
    """Named proxies, as Toxiproxy keeps them."""

    def __init__(self, seed: int | None = None) -> None:
        self.proxies: dict[str, FaultProxy] = {}
        self.seed = seed

    def get(self, name: str) -> FaultProxy:
        """The proxy called ``name``; 404 when there is none."""
        try:
            return self.proxies[name]
        except KeyError:
            raise ApiError(404, "proxy not found") from None

    async def create(self, body: object) -> FaultProxy:
        """A new proxy from Toxiproxy's proxy JSON, started (listening unless disabled)."""
        if not isinstance(body, dict):
            raise ApiError(400, "bad request: body must be a JSON object")
        name, upstream = body.get("name"), body.get("upstream")
        if not isinstance(name, str) or not isinstance(upstream, str):
            raise ApiError(400, "bad request: name and upstream are required strings")
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        if len(self.proxies) >= MAX_PROXIES:
            raise ApiError(400, f"bad request: at most {MAX_PROXIES} proxies")
        enabled = body.get("enabled", True)
        listen = body.get("listen") or "127.0.0.1:0"
        if not isinstance(enabled, bool) or not isinstance(listen, str):
            raise ApiError(400, "bad request: enabled must be a boolean and listen a string")
        given = body.get("toxics") or []
        if not isinstance(given, list):
            raise ApiError(400, "bad request: toxics must be a list")
        try:
            proxy = FaultProxy(name, upstream, listen, enabled=enabled, seed=self.seed)
            toxics = [parse_toxic(t) for t in given]
        except (ProxyConfigError, ToxicError) as exc:
            raise ApiError(400, f"bad request: {exc}") from None
        try:
            await proxy.start()
        except OSError as exc:
            raise ApiError(409 if "in use" in str(exc) else 500, f"listen {listen}: {exc.strerror or exc}") from None
        self.proxies[name] = proxy
        for toxic in toxics:
            proxy.toxics.add(toxic)
        return proxy

    async def delete(self, name: str) -> None:
        """Stop and forget the proxy called ``name`` (404 when there is none)."""
        proxy = self.get(name)
        del self.proxies[name]
        await proxy.stop()

    async def update(self, name: str, body: object) -> FaultProxy:
        """Toxiproxy's proxy update: ``enabled``, ``upstream``, ``listen``."""
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ApiError(400, "bad request: body must be a JSON object")
        current = {"listen": proxy.listen, "upstream": proxy.upstream_text}
        changed = {k: body[k] for k in ("listen", "upstream") if k in body and body[k] != current[k]}
        if changed:
            toxics = [t.to_json() for t in proxy.toxics]
            await self.delete(name)
            merged = {**proxy.to_json(), **changed, "toxics": toxics, "enabled": body.get("enabled", proxy.enabled)}
            return await self.create(merged)
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise ApiError(400, "bad request: enabled must be a boolean")
            await (proxy.enable() if body["enabled"] else proxy.disable())
        return proxy

    async def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        for proxy in self.proxies.values():
            proxy.toxics.clear()
            await proxy.enable()

    async def close(self) -> None:
        """Stop every proxy."""
        for name in list(self.proxies):
            await self.delete(name)


def build_api(registry: ProxyRegistry, token: str | None = None) -> web.Application:
    """The API as an aiohttp application (``token``: required when bound beyond loopback)."""
    app = web.Application(middlewares=[ApiGuard(token).middleware], client_max_size=1 << 16)
    api = _Api(registry)
    app.router.add_get("/version", api.version)
    app.router.add_get("/proxies", api.list_proxies)
    app.router.add_post("/proxies", api.create_proxy)
    app.router.add_post("/populate", api.populate)
    app.router.add_post("/reset", api.reset)
    app.router.add_get("/proxies/{proxy}", api.show_proxy)
    app.router.add_post("/proxies/{proxy}", api.update_proxy)
    app.router.add_delete("/proxies/{proxy}", api.delete_proxy)
    app.router.add_get("/proxies/{proxy}/wire", api.wire)
    app.router.add_get("/proxies/{proxy}/toxics", api.list_toxics)
    app.router.add_post("/proxies/{proxy}/toxics", api.create_toxic)
    app.router.add_get("/proxies/{proxy}/toxics/{toxic}", api.show_toxic)
    app.router.add_post("/proxies/{proxy}/toxics/{toxic}", api.update_toxic)
    app.router.add_delete("/proxies/{proxy}/toxics/{toxic}", api.delete_toxic)
    return app


def api_token(host: str) -> str | None:
    """A fresh token when the API is bound beyond loopback, else None."""
    return None if is_loopback_host(host) else new_token()


def _toxic_call(action: Any) -> Any:
    try:
        return action()
    except ToxicExists as exc:
        raise ApiError(409, str(exc)) from None
    except ToxicNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except ToxicError as exc:
        raise ApiError(400, f"bad request: {exc}") from None


class _Api:
    def __init__(self, registry: ProxyRegistry) -> None:
        self.registry = registry

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": TOXIPROXY_VERSION, "server": "rtplay proxy"})

    async def list_proxies(self, request: web.Request) -> web.Response:
        return web.json_response({name: p.to_json() for name, p in self.registry.proxies.items()})

    async def create_proxy(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        proxy = await _toxic_call_async(self.registry.create(body))
        return web.json_response(proxy.to_json(), status=201)

    async def populate(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if isinstance(body, dict) and "proxies" in body:
            body = body["proxies"]
        if not isinstance(body, list):
            raise ApiError(400, "bad request: populate takes a JSON list of proxies")
        made = []
        for item in body:
            if isinstance(item, dict) and item.get("name") in self.registry.proxies:
                existing = self.registry.proxies[item["name"]]
                if item.get("upstream") == existing.upstream_text and item.get("listen") in (None, existing.listen):
                    made.append(existing)
                    continue
                await self.registry.delete(item["name"])
            made.append(await _toxic_call_async(self.registry.create(item)))
        return web.json_response({"proxies": [p.to_json() for p in made]}, status=201)

    async def reset(self, request: web.Request) -> web.Response:
        await self.registry.reset()
        return web.Response(status=204)

    async def show_proxy(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.get(request.match_info["proxy"]).to_json())

    async def update_proxy(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        proxy = await _toxic_call_async(self.registry.update(request.match_info["proxy"], body))
        return web.json_response(proxy.to_json())

    async def delete_proxy(self, request: web.Request) -> web.Response:
        await self.registry.delete(request.match_info["proxy"])
        return web.Response(status=204)

    async def wire(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.get(request.match_info["proxy"]).wire_json())

    async def list_toxics(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.get(request.match_info["proxy"]).toxics.to_json())

    async def create_toxic(self, request: web.Request) -> web.Response:
        proxy = self.registry.get(request.match_info["proxy"])
        body = await read_json(request)
        toxic = _toxic_call(lambda: proxy.toxics.add(parse_toxic(body)))
        return web.json_response(toxic.to_json())

    async def show_toxic(self, request: web.Request) -> web.Response:
        proxy = self.registry.get(request.match_info["proxy"])
        return web.json_response(_toxic_call(lambda: proxy.toxics.get(request.match_info["toxic"])).to_json())

    async def update_toxic(self, request: web.Request) -> web.Response:
        proxy = self.registry.get(request.match_info["proxy"])
        body = await read_json(request)
        return web.json_response(_toxic_call(lambda: proxy.toxics.update(request.match_info["toxic"], body)).to_json())

    async def delete_toxic(self, request: web.Request) -> web.Response:
        proxy = self.registry.get(request.match_info["proxy"])
        _toxic_call(lambda: proxy.toxics.remove(request.match_info["toxic"]))
        return web.Response(status=204)


async def _toxic_call_async(action: Any) -> Any:
    try:
        return await action
    except ToxicExists as exc:
        raise ApiError(409, str(exc)) from None
    except ToxicError as exc:
        raise ApiError(400, f"bad request: {exc}") from None


class ApiServer:
    """The API on its own listener (default :data:`DEFAULT_API_PORT`)."""

    def __init__(self, registry: ProxyRegistry, host: str = "127.0.0.1", port: int = DEFAULT_API_PORT) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.token = api_token(host)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; ``port`` becomes the bound one. Raises OSError (a port in use)."""
        self._runner = web.AppRunner(build_api(self.registry, self.token), access_log=None, logger=server_logger(), keepalive_timeout=10.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        """The API's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Close the API's listener (the proxies stay: :meth:`ProxyRegistry.close` stops them)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
