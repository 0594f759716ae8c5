"""A protocol-aware fault proxy in front of any HTTP server: ``rtplay proxy UPSTREAM``.

:class:`rtplay.proxy.proxy.FaultProxy` is one proxy (the Python API); :mod:`rtplay.proxy.api`
serves Toxiproxy's HTTP API over many. Pure decisions live in :mod:`~rtplay.proxy.toxics`,
:mod:`~rtplay.proxy.shaping`, :mod:`~rtplay.proxy.sseframe`, :mod:`~rtplay.proxy.wire` and
:mod:`~rtplay.proxy.spec`; the relays are thin aiohttp adapters.
"""
