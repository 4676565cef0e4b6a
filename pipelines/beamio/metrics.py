"""Reading back the Beam counters a pipeline incremented."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult


def counters(
    result: PipelineResult, namespace: str, expected: Iterable[str] = ()
) -> dict[str, int]:
    """Counter values of `namespace`, summed over the steps that incremented them.

    Runners report only counters that were incremented; names in `expected` show up as 0.

    Committed values where the runner reports them, attempted ones otherwise (some portable
    runners only track attempts).
    """
    totals: Counter[str] = Counter({name: 0 for name in expected})
    query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += value or 0
    return dict(sorted(totals.items()))


def print_counters(
    result: PipelineResult, namespace: str, expected: Iterable[str] = ()
) -> dict[str, int]:
    values = counters(result, namespace, expected)
    width = max((len(name) for name in values), default=0) + 2
    print(f"Beam counters ({namespace}):")
    for name, value in values.items():
        print(f"  {name:<{width}}{value:>10,}")
    return values
