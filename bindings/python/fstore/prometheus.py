"""A prometheus_client collector over a store's metrics.

    from prometheus_client import REGISTRY
    from fstore.prometheus import Collector
    REGISTRY.register(Collector(store))

The library renders the exposition (`Store.metrics()`); this only parses it
into metric families, so the series and their names are the same in every
language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from ._store import Store


class Collector:
    """Yields the store's `featurestore_*` metric families at each scrape."""

    def __init__(self, store: "Store") -> None:
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("fstore.prometheus needs prometheus_client: pip install prometheus-client") from e
        self._parse = text_string_to_metric_families
        self._store = store

    def collect(self) -> Iterator[Any]:
        if self._store.closed:
            return iter(())
        return iter(list(self._parse(self._store.metrics())))
