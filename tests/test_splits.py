"""Leak-free splits: near-copy distances, block keys, tune families and the leakage check, on
hand-made windows and on a hand-made corpus run through both Beam stages."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.representation import MELODY_CLASSES, MELODY_FIRST_PITCH_TOKEN
from pipelines.splits import families, leakage, nearcopies
from tests.fixtures_data import make_sequence, melody_notes, to_midi_bytes


def random_melody(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Melody tokens: a third holds (0), some note-offs (1), the rest pitches in the middle."""
    kind = rng.choice(3, size=steps, p=[0.35, 0.1, 0.55])
    pitches = rng.integers(30, 60, size=steps)
    return np.where(kind == 2, pitches, kind).astype(np.int16)


def transpose(window: np.ndarray, shift: int) -> np.ndarray:
    return np.where(window >= MELODY_FIRST_PITCH_TOKEN, window + shift, window).astype(np.int16)


def naive_mismatches(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Same key, and the best of all 25 transpositions of b tried one by one."""
    tried = [int((a != transpose(b, s)).sum()) for s in range(-12, 13)]
    return int((a != b).sum()), min(tried)


def test_mismatches_equal_trying_every_transposition():
    rng = np.random.default_rng(0)
    a = random_melody(rng, 64)
    others = [transpose(a, 5), transpose(a, -12), random_melody(rng, 64), a.copy()]
    changed = transpose(a, 3)
    changed[[4, 9, 30]] = [0, 1, 44]
    others += [changed, transpose(a, 13)]  # 13 semitones is beyond the range looked at
    others += [random_melody(rng, 64) for _ in range(20)]
    same_key, transposed = nearcopies.mismatches(a, np.stack(others))
    assert [(int(s), int(t)) for s, t in zip(same_key, transposed, strict=True)] == [
        naive_mismatches(a, b) for b in others
    ]
    assert transposed[0] == transposed[1] == transposed[3] == 0 and same_key[0] > 0
    assert transposed[4] <= 3 and transposed[5] > 10


def test_drum_tracks_are_never_transposed_and_a_trio_is_compared_by_its_melody():
    melody, bass, drums = [40, 0, 42, 1], [20, 0, 0, 0], [3, 0, 0, 5]
    window = nearcopies.comparable([melody, bass, drums], "trio")
    other_groove = nearcopies.comparable(
        [transpose(np.array(melody), 2), [22, 1, 0, 0], [1] * 4], "trio"
    )
    assert window.tolist() == [40, 0, 42, 1]
    assert nearcopies.mismatches(window, other_groove[None])[1].tolist() == [0]
    # Drum token 2 stays a drum hit: it does not move with the pitches.
    assert nearcopies.comparable([b"\x02\x00\x05\x00"], "drums").tolist() == [-3, -6]


@pytest.mark.parametrize("steps,fraction", [(32, 0.05), (256, 0.05), (256, 0.10)])
def test_block_keys_find_every_transposed_copy_within_the_threshold(steps, fraction):
    rng = np.random.default_rng(steps)
    limit = nearcopies.max_mismatches(steps, fraction)
    for trial in range(200):
        a = random_melody(rng, steps)
        b = transpose(a, int(rng.integers(-12, 13)))
        where = rng.choice(steps, size=limit, replace=False)
        b[where] = random_melody(rng, limit)
        assert nearcopies.mismatches(a, b[None])[1][0] <= limit
        shared = set(nearcopies.block_keys(a, fraction)) & set(nearcopies.block_keys(b, fraction))
        assert shared, f"trial {trial}: a copy within {limit} mismatches shares no block key"
    # A window far from `a` shares none (random tunes agree on no block of 16 or more steps).
    far = random_melody(rng, steps)
    assert not set(nearcopies.block_keys(a, fraction)) & set(nearcopies.block_keys(far, fraction))


def test_families_are_connected_components_named_by_their_smallest_source():
    links = [("b", "c"), ("a", "b"), ("e", "d"), ("x", "y"), ("d", "f")]
    assert sorted(families.families_of(links)) == [
        ("a", "a"), ("b", "a"), ("c", "a"), ("d", "d"), ("e", "d"), ("f", "d"),
        ("x", "x"), ("y", "x"),
    ]  # fmt: skip
    assert families.families_of([]) == []


def test_links_in_bucket_compares_sources_not_windows_of_one_source():
    rng = np.random.default_rng(1)
    a = random_melody(rng, 256)
    near = transpose(a, 2)
    near[:20] = 0  # 20 of 256 positions: 7.8 %
    pack = nearcopies.pack
    members = [("s1", pack(a)), ("s1", pack(near)), ("s2", pack(near))]
    members += [("s3", pack(random_melody(rng, 256)))]
    assert list(families.links_in_bucket(members, 0.10)) == [("s1", "s2")]
    assert list(families.links_in_bucket(members[:2], 0.10)) == []  # one source only
    assert list(families.links_in_bucket(members[1:], 0.05)) == [("s1", "s2")]  # identical copy


def test_leakage_entry_counts_shares_within_each_threshold():
    distances = np.array([[0.0, 0.0], [0.06, 0.04], [0.2, 0.09], [0.5, 0.3]])
    entry = leakage.leakage_entry(distances, 4, seed=7)
    assert entry == {
        "test_windows_sampled": 4,
        "seed": 7,
        "within_5pct": {"same_key": 0.25, "transposed": 0.5},
        "within_10pct": {"same_key": 0.5, "transposed": 0.75},
    }


def test_min_distances_is_the_brute_force_minimum():
    rng = np.random.default_rng(2)
    train = np.stack([random_melody(rng, 32) for _ in range(50)])
    sample = np.stack([transpose(train[3], 4), train[7], random_melody(rng, 32)])
    sample[0, 5] = 0 if sample[0, 5] else 50
    got = nearcopies.min_distances(sample, train)
    want = [[min(naive_mismatches(s, t)[k] for t in train) / 32 for k in (0, 1)] for s in sample]
    np.testing.assert_allclose(got, want)
    assert got[0, 1] == 1 / 32 and got[1].tolist() == [0.0, 0.0]
    assert nearcopies.min_distances(sample, train[:0]).tolist() == [[1.0, 1.0]] * 3


# --- a hand-made corpus through both stages -------------------------------------------------

FRACTION = 0.3  # eval and test each: a handful of files must land in every split


def tune(seed: int, bars: int, shift: int = 0, changed_bar: int | None = None) -> bytes:
    notes = melody_notes(bars, 4, seed=seed)
    if changed_bar is not None:  # another bar: the same rhythm, other pitches
        lo, hi = changed_bar * 4.0, changed_bar * 4.0 + 4
        notes = [(p + 5 if lo <= t < hi else p, t, d) for p, t, d in notes]
    return to_midi_bytes(make_sequence([(0, False, [(p + shift, t, d) for p, t, d in notes])]))


def own_split(data: bytes) -> str:
    import hashlib

    from pipelines.examples import split_of

    return split_of(hashlib.sha256(data).hexdigest(), FRACTION, FRACTION)


@pytest.fixture(scope="module")
def family_corpus(tmp_path_factory) -> dict:
    """A 20-bar tune, its variant (transposed, one bar changed) in a file whose own split differs,
    a 4-bar excerpt of the tune (transposed) held out while the tune is in train, and unrelated
    tunes; both stages run over it."""
    import hashlib

    from pipelines import examples, notesequences

    def family_of(*files: bytes) -> bytes:
        return min(files, key=lambda data: hashlib.sha256(data).hexdigest())

    # Drawn so that the family's split is train and the variant's and excerpt's own are not.
    original, variant, excerpt = next(
        (original, variant, excerpt)
        for seed in range(11, 40)
        if own_split(original := tune(seed, 20)) == "train"
        for shift in range(1, 12)
        if own_split(variant := tune(seed, 20, shift, changed_bar=8)) != "train"
        and own_split(family_of(original, variant)) == "train"
        for excerpt_shift in range(-11, 0)
        if own_split(excerpt := tune(seed, 4, excerpt_shift)) != "train"
    )
    family = family_of(original, variant)
    files = {"tune.mid": original, "variant.mid": variant, "excerpt.mid": excerpt}
    files |= {f"other_{i}.mid": tune(seed=100 + i, bars=18) for i in range(6)}
    root = tmp_path_factory.mktemp("families")
    for name, data in files.items():
        (root / "midi").mkdir(exist_ok=True)
        (root / "midi" / name).write_bytes(data)
    runner = ["--direct_running_mode=in_memory"]
    out = root / "datasets"
    notesequences.main(["--input", str(root / "midi"), "--output", f"{out}/notesequences", *runner])
    fractions = ["--eval_fraction", str(FRACTION), "--test_fraction", str(FRACTION)]
    stats = examples.main(
        ["--input", f"{out}/notesequences", "--output", str(out), *fractions, *runner]
    )
    return {"root": str(out), "stats": stats, "files": files, "family_split": own_split(family)}


def rows_of(root: str, dataset: str) -> list[dict]:
    paths = sorted(glob.glob(os.path.join(root, dataset, "*-of-*.parquet")))
    return pq.ParquetDataset(paths).read(columns=["source_path", "split"]).to_pylist()


def test_a_transposed_variant_with_a_changed_bar_lands_in_its_tunes_split(family_corpus):
    files, root = family_corpus["files"], family_corpus["root"]
    assert own_split(files["tune.mid"]) != own_split(files["variant.mid"])  # a real test
    for dataset in ("mel_16bar", "mel_2bar"):
        splits = {
            (row["source_path"], row["split"])
            for row in rows_of(root, dataset)
            if row["source_path"] in ("tune.mid", "variant.mid")
        }
        assert splits == {
            ("tune.mid", family_corpus["family_split"]),
            ("variant.mid", family_corpus["family_split"]),
        }, dataset
    summary = family_corpus["stats"]["mel_16bar"]["families"]
    assert summary["families"] == 1 and summary["sources_in_families"] == 2
    assert summary["linked_by"] == ["mel_16bar", "trio_16bar"]


def test_a_held_out_excerpt_of_a_train_tune_is_dropped_and_counted(family_corpus):
    stats = family_corpus["stats"]["mel_2bar"]
    excerpt_split = own_split(family_corpus["files"]["excerpt.mid"])
    rows = rows_of(family_corpus["root"], "mel_2bar")
    assert family_corpus["family_split"] == "train" != excerpt_split
    # Every 2-bar window of the excerpt is a transposed copy of one of the tune's.
    assert not [r for r in rows if r["source_path"] == "excerpt.mid"]
    assert stats["near_copies"]["dropped_by_split"][excerpt_split] >= 3
    assert stats["stages"]["examples_written"] == len(rows)
    assert stats["stages"]["near_copies_dropped"] == sum(
        stats["near_copies"]["dropped_by_split"].values()
    )
    assert family_corpus["stats"]["mel_16bar"]["near_copies"]["dropped_by_split"] == {}


def test_stats_report_a_leakage_check_of_the_written_splits(family_corpus):
    root = family_corpus["root"]
    for dataset in ("mel_2bar", "mel_16bar"):
        entry = family_corpus["stats"][dataset]["leakage"]
        tests = sum(r["split"] == "test" for r in rows_of(root, dataset))
        assert entry["test_windows_sampled"] == min(tests, 300) > 0
        assert entry["within_5pct"] == {"same_key": 0.0, "transposed": 0.0}, dataset
        with open(os.path.join(root, dataset, "stats.json")) as f:
            assert json.load(f)["leakage"] == entry


def test_the_check_sees_leaks_when_families_and_dropping_are_off(family_corpus, tmp_path):
    """The same corpus with no families (a threshold of 0 links only identical windows) and no
    dropping: the variant's windows are near copies across the split line, and the check says so."""
    from pipelines import examples

    root = family_corpus["root"]
    stats = examples.main(
        [
            "--input", f"{root}/notesequences", "--output", str(tmp_path),
            "--eval_fraction", str(FRACTION), "--test_fraction", str(FRACTION),
            "--family_threshold", "0", "--near_copy_threshold", "0",
            "--direct_running_mode=in_memory",
        ]
    )  # fmt: skip
    leaked = [stats[d]["leakage"]["within_10pct"]["transposed"] for d in ("mel_2bar", "mel_16bar")]
    assert max(leaked) > 0


def test_melody_classes_bound_what_a_transposition_can_reach():
    # The relative-pitch base of block keys stays clear of every token value.
    assert nearcopies._RELATIVE_PITCH_BASE > 2 * MELODY_CLASSES
