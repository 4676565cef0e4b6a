"""Benchmark of the two Beam stages on a corpus folder, with 1 and 2 workers of each runner.

    python bench/pipeline.py [--corpus data/] [--workers 1,2] [--runners direct,dask] [--json out.json]
    python bench/pipeline.py --scales 1,4,16 --base 1000 [--workers 2]   # memory against corpus size

Each stage runs as its own process exactly as the DVC stage runs it (`python -m pipelines.…`):
on the multi-processing DirectRunner, or on a local dask.distributed cluster of that many worker
processes (`pipelines.beamio.dask.DaskRunner`). The processes (the stage, its DirectRunner
workers, the dask workers) are sampled every 0.1 s: wall time, CPU seconds (user + system,
summed over every process, counted from the stage's start) and peak RSS (the largest sum at one
sample, and the largest single process).

--scales builds corpora of `base` files of --corpus times each scale, every copy of a file
transposed by its own number of semitones (distinct bytes, since identical files would collapse
into one), and prints peak RSS and files/s per stage and size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import psutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Measure:
    stage: str
    runner: str
    workers: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # sum over the process tree, at its largest
    peak_process_rss_mb: float  # the largest single process
    processes: int  # processes seen in the tree
    items: int  # files (stage 1) or examples written (stage 2)
    items_per_s: float


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def run_measured(
    cmd: list[str], log_path: str, helpers: list[psutil.Process] = ()
) -> tuple[float, float, float, float, int]:
    """Runs `cmd`; returns (wall s, CPU s, peak tree RSS MB, peak process RSS MB, processes),
    counting the process trees of `helpers` (a dask cluster's workers) with the command's."""
    cpu_by_pid: dict[int, float] = {}
    cpu_before = {p.pid: sum(p.cpu_times()[:2]) for helper in helpers for p in _tree(helper)}
    peak_tree = peak_process = 0
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            tree = _tree(root) + [p for helper in helpers for p in _tree(helper)]
            rss = 0
            for p in tree:
                try:
                    times = p.cpu_times()
                    mem = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                cpu_by_pid[p.pid] = times.user + times.system - cpu_before.get(p.pid, 0.0)
                rss += mem
                peak_process = max(peak_process, mem)
            peak_tree = max(peak_tree, rss)
            time.sleep(0.1)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log_path}")
    return wall, sum(cpu_by_pid.values()), peak_tree / 2**20, peak_process / 2**20, len(cpu_by_pid)


def bench(
    corpus: str, runner: str, workers: int, work_dir: str, helpers: list, beam_args: list[str]
) -> tuple[list[Measure], dict]:
    out = os.path.join(work_dir, f"{runner}{workers}")
    stage1 = [
        sys.executable,
        "-m",
        "pipelines.notesequences",
        "--input",
        corpus,
        "--output",
        f"{out}/notesequences",
    ]
    stage2 = [
        sys.executable,
        "-m",
        "pipelines.examples",
        "--input",
        f"{out}/notesequences",
        "--output",
        out,
    ]
    measures = []
    wall, cpu, tree, proc, n = run_measured(stage1 + beam_args, f"{out}.notesequences.log", helpers)
    with open(f"{out}/notesequences/stats.json") as f:
        stats1 = json.load(f)
    files = stats1["files_in"]
    measures.append(
        Measure("notesequences", runner, workers, wall, cpu, tree, proc, n, files, files / wall)
    )
    wall, cpu, tree, proc, n = run_measured(stage2 + beam_args, f"{out}.examples.log", helpers)
    stats2 = {}
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name, "stats.json")
        if name != "notesequences" and os.path.exists(path):
            with open(path) as f:
                stats2[name] = json.load(f)
    examples = sum(s["stages"]["examples_written"] for s in stats2.values())
    measures.append(
        Measure("examples", runner, workers, wall, cpu, tree, proc, n, examples, examples / wall)
    )
    return measures, {"notesequences": stats1, **stats2}


@contextlib.contextmanager
def runner_args(runner: str, workers: int):
    """(processes to measure beside each stage, Beam flags) for `workers` workers of `runner`."""
    if runner == "direct":
        yield [], [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
        return
    if runner != "dask":
        raise SystemExit(f"unknown runner {runner!r}: direct or dask")
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        me = psutil.Process()
        helpers = [p for p in me.children() if p.pid != me.pid]
        yield (
            helpers,
            [
                "--runner=pipelines.beamio.dask.DaskRunner",
                f"--dask_client_address={cluster.scheduler_address}",
            ],
        )


def print_table(measures: list[Measure]) -> None:
    print(
        f"{'stage':<14}{'runner':>8}{'workers':>8}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}{'max proc MB':>13}{'items':>10}{'items/s':>10}"
    )
    for m in measures:
        items = f"{m.items:>10,}{m.items_per_s:>10.1f}" if m.items else f"{'-':>10}{'-':>10}"
        print(
            f"{m.stage:<14}{m.runner:>8}{m.workers:>8}{m.wall_s:>9.1f}{m.cpu_s:>9.1f}{m.peak_rss_mb:>13.0f}"
            f"{m.peak_process_rss_mb:>13.0f}{items}"
        )
    print("items: files in (notesequences), examples written (examples)")


def print_counts(stats: dict) -> None:
    s1 = stats["notesequences"]
    print(
        f"\nfiles in {s1['files_in']:,}: converted {s1['converted']:,}, duplicates {s1['duplicates']:,}, "
        f"failed {s1['failed']:,} { ({k: v for k, v in s1['errors_by_reason'].items() if v}) }"
    )
    print(
        f"{'dataset':<12}{'sequences':>10}{'extracted':>11}{'dupes':>9}{'train':>9}{'eval':>8}{'test':>8}"
    )
    for name, s in stats.items():
        if name == "notesequences":
            continue
        print(
            f"{name:<12}{s['stages']['sequences_with_examples']:>10,}{s['stages']['examples_extracted']:>11,}"
            f"{s['duplicates_across_corpus']:>9,}{s['splits']['train']:>9,}{s['splits']['eval']:>8,}{s['splits']['test']:>8,}"
        )


def scaled_corpus(corpus: str, base: int, scale: int, out: str) -> str:
    """`base` MIDI files of `corpus` (every k-th in sorted order) x `scale` transposed copies."""
    import glob

    import mido

    files = sorted(glob.glob(os.path.join(corpus, "**", "*.mid"), recursive=True))
    chosen = files[:: max(1, len(files) // base)][:base]
    for i, path in enumerate(chosen):
        midi = mido.MidiFile(path)
        for shift in range(scale):
            for track in midi.tracks:
                for message in track:
                    if message.type in ("note_on", "note_off"):
                        message.note = min(127, max(0, message.note + (1 if shift else 0)))
            midi.save(os.path.join(out, f"{i:06d}_{shift:02d}.mid"))
    return out


def bench_scales(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scales_") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            corpus = scaled_corpus(args.corpus, args.base, scale, tempfile.mkdtemp(dir=tmp))
            work_dir = tempfile.mkdtemp(dir=tmp)
            workers = int(args.workers.split(",")[-1])
            os.makedirs(os.path.join(work_dir, f"direct{workers}"), exist_ok=True)
            with runner_args("direct", workers) as (helpers, beam_args):
                measures, _ = bench(corpus, "direct", workers, work_dir, helpers, beam_args)
            rows += [(scale, m) for m in measures]
            print_scales(rows)


def print_scales(rows: list) -> None:
    first = {m.stage: m.peak_rss_mb for scale, m in rows if scale == rows[0][0]}
    print(
        f"{'scale':>6}{'stage':>15}{'files/items':>12}{'wall s':>9}{'items/s':>9}{'peak RSS MB':>13}{'x 1st':>7}"
    )
    for scale, m in rows:
        print(
            f"{scale:>6}{m.stage:>15}{m.items:>12,}{m.wall_s:>9.1f}{m.items_per_s:>9.1f}"
            f"{m.peak_rss_mb:>13.0f}{m.peak_rss_mb / first[m.stage]:>7.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="data/", help="corpus folder or glob (stage 1 --input)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--runners", default="direct", help="comma-separated: direct, dask")
    parser.add_argument("--work_dir", default=None, help="where outputs go (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--scales", default=None, help="comma-separated corpus sizes, e.g. 1,4,16")
    parser.add_argument("--base", type=int, default=1000, help="files at scale 1 (--scales)")
    args = parser.parse_args(argv)
    if args.scales:
        bench_scales(args)
        return
    corpus = os.path.abspath(args.corpus)
    measures, stats = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        work_dir = args.work_dir or tmp
        for runner, workers in (
            (r, int(w)) for r in args.runners.split(",") for w in args.workers.split(",")
        ):
            os.makedirs(os.path.join(work_dir, f"{runner}{workers}"), exist_ok=True)
            with runner_args(runner, workers) as (helpers, beam_args):
                m, stats = bench(corpus, runner, workers, work_dir, helpers, beam_args)
            measures += m
            total = Measure(
                "both stages",
                runner,
                workers,
                *(sum(getattr(x, f) for x in m) for f in ("wall_s", "cpu_s")),
                max(x.peak_rss_mb for x in m),
                max(x.peak_process_rss_mb for x in m),
                0,
                0,
                0.0,
            )
            measures.append(total)
            print_table(measures[-3:])
        print(f"\ncorpus {corpus}, {psutil.cpu_count()} cores")
        print_table(measures)
        print_counts(stats)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"corpus": corpus, "measures": [asdict(m) for m in measures], "stats": stats},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
