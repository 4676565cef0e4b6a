"""Tune families: source files that share near-copies of a window, found at corpus scale.

Folk books print one tune in several collections, in variants and in other keys; Lakh has many
versions of one song. A split by source file puts such copies on both sides of the train/test
line. `FindFamilies` links two sources when a window of one is within `threshold` of a window of
the other (normalised Hamming distance under the best transposition), and a family is a connected
component of those links. Splitting by a hash of the family keeps every copy on one side.

No pair of windows is compared unless it shares a block key (`nearcopies.block_keys`, exact for
the threshold); a block key shared by more than MAX_BUCKET_WINDOWS windows (a bar of one held
note, say) says nothing about tunes and is skipped, and stats.json counts how often.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from pipelines.splits import nearcopies

# Windows beyond this in one block bucket are a stock figure, not a tune; its pairs are skipped.
MAX_BUCKET_WINDOWS = 500


def bucket_windows(
    dataset: str, source_id: str, tracks: tuple[bytes, ...], kind: str, threshold: float
) -> Iterator[tuple[tuple[str, bytes], tuple[str, bytes]]]:
    """((dataset, block key), (source_id, packed window)) for each block of a window."""
    window = nearcopies.comparable(tracks, kind)
    data = nearcopies.pack(window)
    for key in nearcopies.block_keys(window, threshold):
        yield (dataset, key), (source_id, data)


def links_in_bucket(
    members: Iterable[tuple[str, bytes]], threshold: float
) -> Iterator[tuple[str, str] | beam.pvalue.TaggedOutput]:
    """(smaller source id, larger) for each pair of sources with windows in this bucket within
    `threshold` of each other; a skipped bucket yields a "skipped" count instead."""
    members = list(members)
    sources = np.array([source for source, _ in members])
    if len(set(sources.tolist())) < 2:
        return
    if len(members) > MAX_BUCKET_WINDOWS:
        yield beam.pvalue.TaggedOutput("skipped", len(members))
        return
    windows = np.stack([nearcopies.unpack(data) for _, data in members])
    limit = nearcopies.max_mismatches(windows.shape[1], threshold)
    linked: set[tuple[str, str]] = set()
    for i in range(len(members) - 1):
        others = np.flatnonzero(sources[i + 1 :] != sources[i]) + i + 1
        if not len(others):
            continue
        _, transposed = nearcopies.mismatches(windows[i], windows[others])
        for j in others[transposed <= limit]:
            linked.add(tuple(sorted((str(sources[i]), str(sources[j])))))
    yield from sorted(linked)


def families_of(links: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source_id, family id) for every linked source: the family id is the smallest source id of
    its connected component, so it does not depend on the order of the links."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    sources = sorted({source for link in links for source in link})
    if not sources:
        return []
    index = {source: i for i, source in enumerate(sources)}
    rows = [index[a] for a, _ in links]
    cols = [index[b] for _, b in links]
    graph = coo_matrix((np.ones(len(links)), (rows, cols)), shape=(len(sources), len(sources)))
    _, labels = connected_components(graph, directed=False)
    first: dict[int, str] = {}
    for source, label in zip(sources, labels.tolist(), strict=True):
        first.setdefault(label, source)  # sources are sorted: the first seen is the smallest
    return [(source, first[label]) for source, label in zip(sources, labels.tolist(), strict=True)]


def summarize(
    families: list[tuple[str, str]], links: int, skipped: list[int], threshold: float
) -> dict:
    """The `families` entry of stats.json (the same in every dataset of a run)."""
    sizes = collections.Counter(family for _, family in families)
    return {
        "threshold": threshold,
        "links": links,
        "families": len(sizes),
        "sources_in_families": sum(sizes.values()),
        "largest": max(sizes.values(), default=0),
        "buckets_skipped": len(skipped),
        "windows_in_skipped_buckets": sum(skipped),
    }


class FindFamilies(beam.PTransform):
    """(dataset, source_id, tracks) of every window of the datasets that link sources →
    {"families": (source_id, family id) for each source with a near-copy in another source,
    "summary": one dict, the `families` entry of stats.json}.

    The links are collected in one place for the connected components: a few per family, so a
    corpus of 176k files gives a graph of a few MB.
    """

    def __init__(self, kinds: dict[str, str], threshold: float):
        super().__init__()
        self._kinds = kinds
        self._threshold = threshold

    def expand(self, windows):
        kinds, threshold = self._kinds, self._threshold
        buckets = (
            windows
            | "BlockKeys"
            >> beam.FlatMapTuple(
                lambda dataset, source, tracks: bucket_windows(
                    dataset, source, tracks, kinds[dataset], threshold
                )
            )
            | "GroupByBlock" >> beam.GroupByKey()
        )
        found = buckets | "Verify" >> beam.FlatMapTuple(
            lambda _, members: links_in_bucket(members, threshold)
        ).with_outputs("skipped", main="links")
        links = found.links | "DistinctLinks" >> beam.Distinct()
        all_links = links | "AllLinks" >> beam.combiners.ToList()
        families = all_links | "Components" >> beam.FlatMap(families_of)
        summary = all_links | "Summary" >> beam.Map(
            lambda links, skipped, families: summarize(families, len(links), skipped, threshold),
            skipped=beam.pvalue.AsList(found.skipped),
            families=beam.pvalue.AsList(families),
        )
        return {"families": families, "summary": summary}
