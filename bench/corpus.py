"""Benchmark of the default-corpus build (`python -m pipelines.corpus`) with 1 and 2 workers.

    python bench/corpus.py [--limit N] [--workers 1,2] [--profile N] [--baseline N]

Each build runs as its own process, exactly as `make data` runs it (multi-processing
DirectRunner, N workers); the figures come from the kernel's accounting of that process and all
the worker processes it waited for: wall time, CPU seconds (user + system) and peak RSS of the
largest single process. The outputs of the builds must be byte-identical; the script checks it.

--profile N times the three steps of converting a tune in this process, over N tunes of each
collection: music21's ABC tokenizer, our bar walk + repeat expansion, MIDI writing.
--baseline N converts N tunes per collection the straightforward way (music21 parse ->
expandRepeats -> music21's MIDI writer), to show what the build would cost without the fast route.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from pipelines.corpus.build import tree_digest  # noqa: E402


def run_build(output: str, workers: int, limit: int | None, log_path: str) -> dict:
    cmd = [sys.executable, "-m", "pipelines.corpus", "--output", output]
    cmd += [f"--direct_num_workers={workers}"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log_path}")
    with open(os.path.join(output, "REPORT.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return {
        "workers": workers,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        "tunes": report["total"]["converted"],
        "failed": report["total"]["failed"],
        "digest": tree_digest(output),
    }


def sample_tunes(per_collection: int, seed: int = 0) -> list:
    from pipelines.corpus.abc_tunes import decode_abc, split_tunes
    from pipelines.corpus.build import DEFAULT_COLLECTIONS, music21_corpus_dir

    rng = random.Random(seed)
    tunes = []
    for collection in DEFAULT_COLLECTIONS:
        folder = os.path.join(music21_corpus_dir(), collection)
        found = []
        for name in sorted(os.listdir(folder)):
            if name.endswith(".abc"):
                with open(os.path.join(folder, name), "rb") as handle:
                    found += split_tunes(decode_abc(handle.read()), collection, name)
        tunes += rng.sample(found, min(per_collection, len(found)))
    return tunes


def profile_steps(per_collection: int) -> None:
    from pipelines.corpus.abc_tokens import play_with_tokens, tokenize
    from pipelines.corpus.midi import midi_bytes

    tunes = sample_tunes(per_collection)
    clock = time.process_time
    t0 = clock()
    for tune in tunes:
        tokenize(tune.text, tune.abc_version)
    t1 = clock()
    played = [play_with_tokens(tune.text, tune.abc_version) for tune in tunes]
    t2 = clock()
    for tune in played:
        midi_bytes(tune)
    t3 = clock()
    n = len(tunes)
    print(
        f"\nper-tune CPU over {n} sampled tunes (ms): tokenize {1e3 * (t1 - t0) / n:.2f}, "
        f"bar walk + repeats {1e3 * (t2 - t1 - (t1 - t0)) / n:.2f}, "
        f"MIDI {1e3 * (t3 - t2) / n:.2f}"
    )


def profile_baseline(per_collection: int) -> None:
    """music21 parse -> expandRepeats -> music21 MIDI writer, per collection."""
    from music21 import exceptions21, midi, repeat
    from music21.abcFormat import translate

    from pipelines.corpus.abc_tokens import tokenize

    tunes = sample_tunes(per_collection, seed=1)
    by_collection: dict[str, list[float]] = {}
    failed = 0
    for tune in tunes:
        start = time.process_time()
        try:
            score = translate.abcToStreamScore(tokenize(tune.text, tune.abc_version))
            # Badly formed repeats: the old build wrote the tune unexpanded.
            with contextlib.suppress(repeat.ExpanderException, exceptions21.StreamException):
                score = score.expandRepeats()
            midi.translate.streamToMidiFile(score).writestr()
        except Exception:  # "TimeSignature already found" and friends
            failed += 1
        by_collection.setdefault(tune.collection, []).append(time.process_time() - start)
    print(
        f"\nstraightforward music21 route, CPU s per tune ({failed} of {len(tunes)} failed "
        "in music21's MIDI writer):"
    )
    for collection, seconds in by_collection.items():
        print(f"  {collection:<16}{sum(seconds) / len(seconds):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="tunes per collection (all)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--baseline", type=int, default=0, metavar="N")
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as work:
        for workers in (int(w) for w in args.workers.split(",")):
            output = os.path.join(work, f"workers{workers}")
            results.append(run_build(output, workers, args.limit, f"{output}.log"))
    print(f"{'workers':>7}{'wall s':>9}{'CPU s':>9}{'tunes/s':>9}{'peak RSS MB':>13}{'failed':>8}")
    for r in results:
        print(
            f"{r['workers']:>7}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}"
            f"{r['tunes'] / r['wall_s']:>9.0f}{r['peak_rss_mb']:>13.0f}{r['failed']:>8}"
        )
    digests = {r["digest"] for r in results}
    print(f"outputs byte-identical across runs: {len(digests) == 1} ({results[0]['digest'][:16]})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.profile:
        profile_steps(args.profile)
    if args.baseline:
        profile_baseline(args.baseline)
    if len(digests) != 1:
        raise SystemExit("builds differ")


if __name__ == "__main__":
    main()
