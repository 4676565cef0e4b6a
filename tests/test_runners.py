"""The Beam stages on their runners: the multi-process DirectRunner for real, and the graphs that
Dataflow, Flink and Spark would receive (built and serialized, never submitted)."""

from __future__ import annotations

import glob
import json
import os
import pathlib

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    SetupOptions,
    StandardOptions,
)

from pipelines import examples as stage2
from pipelines import notesequences as stage1
from pipelines.beamio.options import pipeline_options
from pipelines.extract.windows import DATASET_SPECS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATAFLOW_ARGS = [
    "--runner=DataflowRunner",
    "--project=my-project",
    "--region=europe-west1",
    "--temp_location=gs://my-bucket/tmp",
]


def test_direct_runner_defaults_to_one_process_per_core():
    options = pipeline_options([])
    direct = options.view_as(DirectOptions)
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert direct.direct_running_mode == "multi_processing"
    assert direct.direct_num_workers == len(os.sched_getaffinity(0))
    chosen = pipeline_options(["--direct_num_workers=1", "--direct_running_mode=multi_threading"])
    assert chosen.view_as(DirectOptions).direct_num_workers == 1
    assert chosen.view_as(DirectOptions).direct_running_mode == "multi_threading"


def test_remote_runners_ship_the_project_with_setup_py():
    options = pipeline_options(DATAFLOW_ARGS)
    assert options.view_as(SetupOptions).setup_file == os.path.join(REPO_ROOT, "setup.py")
    assert os.path.exists(options.view_as(SetupOptions).setup_file)
    assert options.view_as(GoogleCloudOptions).project == "my-project"
    custom = pipeline_options([*DATAFLOW_ARGS, "--sdk_container_image=gcr.io/p/image:1"])
    assert custom.view_as(SetupOptions).setup_file is None  # the image already holds the code


def serialized_graph(beam_args: list[str], build) -> dict[str, str]:
    """Builds a pipeline for a runner, serializes it to the portable proto, reads it back.

    Returns {transform label: urn}. Serializing pickles every DoFn and coder, and reading it back
    unpickles them, which is what a remote worker does first.
    """
    pipeline = beam.Pipeline(options=pipeline_options(beam_args))
    build(pipeline)
    proto = pipeline.to_runner_api()
    beam.Pipeline.from_runner_api(proto, pipeline.runner, pipeline.options)
    return {t.unique_name: t.spec.urn for t in proto.components.transforms.values()}


def build_both_stages(pipeline: beam.Pipeline, root: str) -> None:
    stage1.build_pipeline(pipeline, f"{root}/midi/**/*.mid", f"{root}/datasets/notesequences")
    stage2.build_pipeline(
        pipeline, f"{root}/datasets/notesequences", f"{root}/datasets", list(DATASET_SPECS.values())
    )


@pytest.mark.parametrize(
    "beam_args",
    [
        pytest.param(DATAFLOW_ARGS, id="dataflow"),
        pytest.param(
            [
                "--runner=FlinkRunner",
                "--flink_master=localhost:8081",
                "--environment_type=LOOPBACK",
            ],
            id="flink",
        ),
        pytest.param(
            ["--runner=SparkRunner", "--spark_master_url=spark://localhost:7077"], id="spark"
        ),
    ],
)
def test_graph_builds_for_remote_runners(beam_args):
    transforms = serialized_graph(beam_args, lambda p: build_both_stages(p, "gs://my-bucket"))
    labels = set(transforms)
    assert "ToNoteSequences/Convert" in labels
    assert "ToExamples/DedupAcrossCorpus" in labels
    for name in DATASET_SPECS:
        for split in stage2.SPLITS:
            assert f"WriteDatasets/Write_{name}_{split}" in labels
    assert "beam:transform:group_by_key:v1" in transforms.values()


def read_rows(pattern: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    paths = sorted(glob.glob(pattern))
    assert paths, pattern
    table = pq.ParquetDataset(paths).read()
    table = table.drop_columns([c for c in drop if c in table.schema.names])
    return sorted(tuple(str(v) for v in row.values()) for row in table.to_pylist())


@pytest.mark.slow  # ~40 s: starts worker processes four times
def test_multiprocess_direct_runner_gives_the_in_memory_result(generated_corpus_dir, tmp_path):
    """Both CLIs with their defaults (one worker process per core) against the in-memory runner."""
    runs = {}
    for mode in ("multi_processing", "in_memory"):
        out = tmp_path / mode
        mode_args = [] if mode == "multi_processing" else ["--direct_running_mode=in_memory"]
        s1 = stage1.main(
            ["--input", f"{generated_corpus_dir}/**", "--output", f"{out}/ns", *mode_args]
        )
        s2 = stage2.main(["--input", f"{out}/ns", "--output", str(out), *mode_args])
        runs[mode] = (out, s1, s2)
    (multi, s1_multi, s2_multi), (single, s1_single, s2_single) = runs.values()
    assert s1_multi == s1_single and s2_multi == s2_single
    for prefix in ("notesequences", "errors", "duplicates"):
        assert read_rows(f"{multi}/ns/{prefix}-*.parquet") == read_rows(
            f"{single}/ns/{prefix}-*.parquet"
        )
    for name in DATASET_SPECS:
        for split in stage2.SPLITS:
            assert read_rows(f"{multi}/{name}/{split}-*.parquet") == read_rows(
                f"{single}/{name}/{split}-*.parquet"
            )
    # And the files themselves: same names, same bytes (what DVC hashes).
    files = {}
    for root in (multi, single):
        paths = sorted(glob.glob(f"{root}/*/*"))
        files[root] = {os.path.relpath(p, root): pathlib.Path(p).read_bytes() for p in paths}
    assert files[multi] == files[single]


@pytest.mark.slow  # ~1-2 min: a 2-worker dask.distributed cluster runs both stages
def test_dask_cluster_writes_the_direct_runners_bytes(tiny_datasets, tmp_path):
    """Both stages on a local dask.distributed cluster of 2 worker processes, through
    pipelines.beamio.dask.DaskRunner: the same files, byte for byte, as the DirectRunner's."""
    from distributed import LocalCluster
    from fixtures_data import run_tiny_stages
    from test_examples import stage_outputs

    corpus = os.path.join(os.path.dirname(tiny_datasets), "corpus")
    out = str(tmp_path / "datasets")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask_args = [
            "--runner=pipelines.beamio.dask.DaskRunner",
            f"--dask_client_address={cluster.scheduler_address}",
        ]
        all_stats = run_tiny_stages(corpus, out, dask_args)
        assert len(cluster.scheduler_info["workers"]) == 2
    want, got = stage_outputs(tiny_datasets), stage_outputs(out)
    assert sorted(got) == sorted(want) and len(got) == 20  # 4 datasets x 4 files + 4 of stage 1
    assert [path for path in want if got[path] != want[path]] == []
    assert all_stats["mel_16bar"]["splits"]["test"] > 0


def test_beams_own_dask_runner_drops_tagged_outputs_and_all_but_one_sink(tmp_path):
    """Why pipelines.beamio.dask exists: on Beam's DaskRunner, a consumer of one output of a
    multi-output ParDo sees them all, and only the last sink runs. Ours routes and runs both."""
    from distributed import LocalCluster

    def run(runner: str) -> dict[str, list[int]]:
        def route(x):
            yield x if x % 2 else beam.pvalue.TaggedOutput("even", x)

        def sink(name: str):
            return lambda xs: (tmp_path / f"{runner}-{name}").write_text(json.dumps(sorted(xs)))

        with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
            options = pipeline_options(
                [f"--runner={runner}", f"--dask_client_address={cluster.scheduler_address}"]
            )
            p = beam.Pipeline(options=options)
            parts = p | beam.Create(range(6)) | beam.FlatMap(route).with_outputs("even", main="odd")
            for name in ("odd", "even"):
                _ = (
                    parts[name]
                    | f"All_{name}" >> beam.combiners.ToList()
                    | f"Sink_{name}" >> (beam.Map(sink(name)))
                )
            p.run().wait_until_finish()
        return {
            name: json.loads((tmp_path / f"{runner}-{name}").read_text())
            for name in ("odd", "even")
            if (tmp_path / f"{runner}-{name}").exists()
        }

    assert run("pipelines.beamio.dask.DaskRunner") == {"odd": [1, 3, 5], "even": [0, 2, 4]}
    beams = run("apache_beam.runners.dask.dask_runner.DaskRunner")
    assert beams != {"odd": [1, 3, 5], "even": [0, 2, 4]}  # if this fails, Beam fixed it
