"""Two real nodes on one PostgreSQL database: a registration, a client update, a deletion, a token
revocation and both key rotation steps made on (or next to) node A are acted on by node B. The times
are measured by `python -m bench.propagation` (docs/operations.md); here each change must only
arrive, within a generous deadline. With the poll alone every change would arrive too, so the last
test shows both nodes listening: the notification connection came up and was never reported down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.nodes import Node, start_node
from bench.propagation import Pair, measure_round

from tests.pg_helpers import throwaway_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("two-nodes")
    with throwaway_database() as url:
        nodes: list[Node] = []
        try:
            for name in ("a", "b"):
                nodes.append(start_node(name, base / "data", url, "https://as.example"))
            pair = Pair(nodes[0], nodes[1], url)
            yield pair
            pair.close()
        finally:
            for node in nodes:
                node.stop()


def test_every_kind_of_change_reaches_the_other_node(pair: Pair) -> None:
    for _ in range(2):  # twice: both key rotation steps (add the next key, then activate it)
        arrived = measure_round(pair)
        assert None not in arrived.values(), arrived


def test_the_other_node_listens_for_changes(pair: Pair) -> None:
    for node in (pair.a, pair.b):
        lines = node.output()
        assert "generation notifications on (LISTEN certbound_generation)" in lines
        assert "generation notifications unavailable" not in lines
        assert "cannot read the store generation" not in lines
