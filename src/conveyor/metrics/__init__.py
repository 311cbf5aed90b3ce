"""Monitoring: the metrics the backend keeps, read as ``app.stats()``, exported to Prometheus
(:func:`asgi_app`, ``conveyor metrics``) and checked against ``app.alert(...)`` thresholds
(``conveyor health``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app import Conveyor


def asgi_app(app: Conveyor) -> Any:
    """An ASGI app serving the Prometheus text exposition of ``app``'s cluster-wide metrics
    (mount it at ``/metrics`` in a Starlette or FastAPI app)."""
    from conveyor.metrics.prometheus import asgi_app as build

    return build(app)


__all__ = ["asgi_app"]
