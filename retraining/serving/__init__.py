"""The HTTP service of ``serve.py``: the ASGI app, input parsing, the model watcher, live A/B, metrics.

May import: the ground modules, ``data`` and ``ab``. Imported by ``serve.py`` (through
its own ``cli`` module).

Modules: ``app`` (routes, the ASGI application), ``models`` (load and hot-swap the
production file), ``inputs`` (request bodies to frames), ``batch`` (micro-batching),
``ab`` (live A/B, the log writer), ``shadow`` (a second model off the request path),
``production`` (the production log, the bake period), ``metrics`` (Prometheus).
"""
