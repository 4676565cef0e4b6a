"""Stage 2 (NoteSequences → datasets) on the stage-1 output of the generated corpus."""

from __future__ import annotations

import collections
import glob
import os
import pathlib

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from note_seq.protobuf import music_pb2

from pipelines import examples as stage2
from pipelines import notesequences as stage1
from pipelines.extract.windows import DATASET_SPECS, examples_from_notesequence
from pipelines.representation import TRACKS

IN_MEMORY = ["--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def stage1_output(generated_corpus_dir, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("stage1") / "notesequences")
    stage1.main(["--input", f"{generated_corpus_dir}/**/*.mid", "--output", out, *IN_MEMORY])
    return out


def reference_rows(stage1_folder: str, eval_fraction=0.05, test_fraction=0.05) -> dict[str, dict]:
    """What stage 2 must write, computed without Beam: {dataset: {window id: (row fields)}}.

    Runs the extraction on every stored sequence and keeps, for each window content, the copy
    with the smallest (source_id, piece, start_bar, program).
    """
    table = pq.ParquetDataset(sorted(glob.glob(f"{stage1_folder}/notesequences-*.parquet"))).read()
    best: dict[str, dict] = collections.defaultdict(dict)
    for row in table.to_pylist():
        sequence = music_pb2.NoteSequence.FromString(row["note_sequence"])
        for name, spec in DATASET_SPECS.items():
            for ex in examples_from_notesequence(sequence, spec)[0]:
                key = (row["id"], ex.piece, ex.start_bar, ex.program)
                if ex.content_key() not in best[name] or key < best[name][ex.content_key()][0]:
                    best[name][ex.content_key()] = (key, row["path"], ex)
    return {
        name: {
            window_id: (
                key[0],
                path,
                stage2.split_of(key[0], eval_fraction, test_fraction),
                key[2],
                key[3],
                tuple(
                    tuple(ex.tracks[t.column].tolist()) for t in TRACKS[DATASET_SPECS[name].kind]
                ),
            )
            for window_id, (key, path, ex) in windows.items()
        }
        for name, windows in best.items()
    }


def row_fields(row: dict, kind: str) -> tuple:
    tokens = tuple(tuple(int(x) for x in row[t.column]) for t in TRACKS[kind])
    return (
        row["source_id"],
        row["source_path"],
        row["split"],
        row["start_bar"],
        row["program"],
        tokens,
    )


def test_split_is_stable_and_close_to_90_5_5():
    ids = [f"{i:064x}" for i in range(20_000)]
    splits = collections.Counter(stage2.split_of(i) for i in ids)
    assert splits["train"] / len(ids) == pytest.approx(0.90, abs=0.01)
    assert splits["eval"] / len(ids) == pytest.approx(0.05, abs=0.01)
    assert splits["test"] / len(ids) == pytest.approx(0.05, abs=0.01)
    assert [stage2.split_of(i) for i in ids[:100]] == [stage2.split_of(i) for i in ids[:100]]
    assert {stage2.split_of(i, 0.0, 0.0) for i in ids[:1000]} == {"train"}


def test_keep_first_copy_picks_the_smallest_candidate_and_counts_copies():
    keys = [("mel_2bar", "k1"), ("mel_2bar", "k2")]

    def candidate(source_id: str, piece: int, start_bar: int, program: int) -> stage2.Candidate:
        return stage2.Candidate(
            source_id, piece, start_bar, program, "4/4", "a.mid", (b"\x01\x00",)
        )

    with test_pipeline.TestPipeline(argv=IN_MEMORY) as p:
        kept = (
            p
            | beam.Create(
                [
                    (keys[0], candidate("b", 0, 3, 0)),
                    (keys[0], candidate("a", 1, 0, 0)),
                    (keys[0], candidate("a", 0, 7, 5)),
                    (keys[1], candidate("c", 0, 0, 0)),
                ]
            )
            | beam.CombinePerKey(stage2.KeepFirstCopy())
            | beam.MapTuple(lambda key, kept: (key, (type(kept[0]).__name__, *kept)))
        )
        assert_that(
            kept,
            equal_to(
                [
                    (keys[0], ("Candidate", candidate("a", 0, 7, 5), 3)),
                    (keys[1], ("Candidate", candidate("c", 0, 0, 0), 1)),
                ]
            ),
        )


def test_candidate_coder_round_trips_and_is_registered():
    value = stage2.Candidate("id", 1, 2, -1, "2/4", "x/y.mid", (b"\x01\x00", b""))
    coder = beam.coders.registry.get_coder(stage2.Candidate)
    assert isinstance(coder, stage2.CandidateCoder) and coder.is_deterministic()
    decoded = coder.decode(coder.encode(value))
    assert decoded == value and type(decoded) is stage2.Candidate
    # The plain tuple's encoding: no pickle of the NamedTuple class on the wire.
    assert coder.encode(value) == beam.coders.FastPrimitivesCoder().encode(tuple(value))


def test_transform_rows_match_the_reference(stage1_output):
    """The (dataset, row) elements that come out of ToExamples, inside a Beam TestPipeline."""
    reference = reference_rows(stage1_output)
    want = [
        (name, window_id, *fields)
        for name, windows in reference.items()
        for window_id, fields in windows.items()
    ]
    # The generated corpus exercises what it should: every dataset, and cross-file duplicates.
    assert {name for name, *_ in want} == set(DATASET_SPECS)
    specs = list(DATASET_SPECS.values())
    with test_pipeline.TestPipeline(argv=IN_MEMORY) as p:
        out = (
            p
            | stage2.ReadNoteSequences(stage1_output, desired_bundle_size=1024)
            | stage2.ToExamples(specs)
        )
        assert_that(
            out["rows"]
            | beam.MapTuple(
                lambda name, row: (name, row["id"], *row_fields(row, DATASET_SPECS[name].kind))
            ),
            equal_to(want),
        )


def read_split(folder: str, split: str):
    files = sorted(glob.glob(os.path.join(folder, f"{split}-*-of-*.parquet")))
    assert files, f"no {split} files in {folder}"
    return pq.ParquetDataset(files).read()


def test_cli_end_to_end(stage1_output, tmp_path, capsys):
    out = str(tmp_path / "datasets")
    all_stats = stage2.main(["--input", stage1_output, "--output", out, *IN_MEMORY])
    reference = reference_rows(stage1_output)
    printed = capsys.readouterr().out
    split_of_source: dict[str, str] = {}
    for name, spec in DATASET_SPECS.items():
        folder = os.path.join(out, name)
        tables = {split: read_split(folder, split) for split in stage2.SPLITS}
        rows = [r for split in stage2.SPLITS for r in tables[split].to_pylist()]
        # Exactly the reference windows, each in the file of its split, tokens as int16 lists.
        assert {r["id"]: row_fields(r, spec.kind) for r in rows} == reference[name]
        assert len(rows) == len(reference[name])
        for split, table in tables.items():
            assert set(table.column("split").to_pylist()) <= {split}
            for track in TRACKS[spec.kind]:
                assert str(table.schema.field(track.column).type) == "list<item: int16>"
                lengths = {len(t) for t in table.column(track.column).to_pylist()}
                assert lengths <= {spec.num_steps}
        for row in rows:  # a source file is in one split, in every dataset
            assert split_of_source.setdefault(row["source_id"], row["split"]) == row["split"]

        stats = all_stats[name]
        assert (
            stats["stages"]["examples_after_dedup"]
            == len(rows)
            == stats["stages"]["examples_written"]
        )
        assert stats["splits"] == {s: len(tables[s]) for s in stage2.SPLITS}
        assert (
            stats["stages"]["examples_extracted"]
            == stats["stages"]["examples_after_dedup"] + stats["duplicates_across_corpus"]
        )
        assert stats["source_files_by_split"] == {
            s: len(set(tables[s].column("source_id").to_pylist())) for s in stage2.SPLITS
        }
        assert sum(stats["examples_by_meter"].values()) == len(rows)
        # Every extracted window is counted once by its meter, before the de-duplication.
        by_meter = stats["examples_by_meter_before_dedup"]
        assert sum(by_meter.values()) == stats["stages"]["examples_extracted"]
        assert stats["filters"]["meter:4/4"] > 0  # pieces' meters, under their reported names
        assert f"{name}:" in printed
    # The melody exists twice under two programs: its windows were de-duplicated across files.
    assert all_stats["mel_16bar"]["duplicates_across_corpus"] > 0


@pytest.mark.parametrize("num_shards", [0, 1, 3])
def test_every_split_file_exists_even_when_empty(stage1_output, tmp_path, num_shards):
    """--num_shards N gives exactly N files per split, empty ones included; 0 (files from the row
    count) gives one file for these few rows, and for an empty split."""
    out = str(tmp_path / "datasets")
    stats = stage2.main(
        [
            "--input", stage1_output,
            "--output", out,
            "--datasets", "drums_2bar",
            "--eval_fraction", "0",
            "--test_fraction", "0",
            "--num_shards", str(num_shards),
            *IN_MEMORY,
        ]
    )  # fmt: skip
    assert sorted(os.listdir(out)) == ["drums_2bar"]
    folder = os.path.join(out, "drums_2bar")
    n = num_shards or 1
    assert sorted(os.listdir(folder)) == sorted(
        [f"{split}-{i:05d}-of-{n:05d}.parquet" for split in stage2.SPLITS for i in range(n)]
        + ["stats.json"]
    )
    for split in ("eval", "test"):
        table = read_split(folder, split)
        assert len(table) == 0 and "tokens" in table.schema.names
    assert len(read_split(folder, "train")) == stats["drums_2bar"]["splits"]["train"] > 0


def test_unknown_dataset_is_refused(stage1_output, tmp_path):
    with pytest.raises(SystemExit, match="unknown dataset"):
        stage2.main(["--input", stage1_output, "--output", str(tmp_path), "--datasets", "mel_3bar"])


def test_missing_stage1_output_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="run pipelines.notesequences first"):
        stage2.main(["--input", str(tmp_path), "--output", str(tmp_path / "out")])


def test_tiny_datasets_fixture(tiny_datasets):
    """The datasets training and evaluation tests use: every dataset has rows in every split,
    and no source file of the real corpus lands in two splits."""
    split_of_source: dict[str, str] = {}
    for name, spec in DATASET_SPECS.items():
        for split in stage2.SPLITS:
            table = read_split(os.path.join(tiny_datasets, name), split)
            assert len(table) > 0, (name, split)
            for source_id in table.column("source_id").to_pylist():
                assert split_of_source.setdefault(source_id, split) == split
            tokens = np.array(table.column(TRACKS[spec.kind][0].column).to_pylist()[0])
            assert tokens.shape == (spec.num_steps,)


def stage_outputs(root: str) -> dict[str, bytes]:
    """{path relative to root: bytes} of every file both stages write (what DVC hashes)."""
    patterns = ["notesequences/*"] + [f"{name}/*" for name in DATASET_SPECS]
    return {
        os.path.relpath(path, root): pathlib.Path(path).read_bytes()
        for pattern in patterns
        for path in sorted(glob.glob(os.path.join(root, pattern)))
    }


def test_outputs_are_byte_identical_with_two_workers(tiny_datasets, tmp_path):
    """Both stages again over the tiny real corpus with two workers, which split every stage's
    input into other bundles than the fixture's one in-memory worker: the same files, byte for
    byte, and the rows the counters counted. (Two worker threads: processes would add ~15 s of
    start-up; tests/test_runners.py compares the multi-process runner.)"""
    from fixtures_data import run_tiny_stages

    corpus = os.path.join(os.path.dirname(tiny_datasets), "corpus")  # as the fixture names it
    out = str(tmp_path / "datasets")
    two_workers = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
    all_stats = run_tiny_stages(corpus, out, two_workers)

    want, got = stage_outputs(tiny_datasets), stage_outputs(out)
    assert sorted(got) == sorted(want)
    assert [path for path in want if got[path] != want[path]] == []
    assert "notesequences/errors-00000-of-00001.parquet" in got  # an empty table: one empty file
    for name, stats in all_stats.items():
        for split in stage2.SPLITS:
            files = glob.glob(os.path.join(out, name, f"{split}-*.parquet"))
            rows = sum(pq.read_metadata(f).num_rows for f in files)
            assert rows == stats["splits"][split] > 0, (name, split)
