"""certbound.observability: what operators see of the server.

``logs`` (JSON logging for the whole process), ``redact`` (no secret reaches a log line),
``requestlog`` (one event per request), ``metrics`` (the Prometheus metrics) and ``metrics_server``
(the separate listener that serves them). See docs/operations.md.
"""
