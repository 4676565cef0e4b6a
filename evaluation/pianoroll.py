"""Piano-roll PNGs of NoteSequences, and line plots with intervals (matplotlib, Agg backend).

A figure is a vertical stack of panels that share their axes, so that an original sits right
above its reconstruction, and the steps of an interpolation line up from A down to B. Time is in
16th-note steps with a line at every bar; each track gets its own colour, and drum hits go to one
lane per drum class (below the pitched notes of a trio).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from note_seq.protobuf import music_pb2  # noqa: E402

from pipelines.representation import (  # noqa: E402
    DRUM_CLASS_NAMES,
    DRUM_PITCH_TO_CLASS,
    NUM_DRUM_CLASSES,
)

STEPS_PER_QUARTER = 4
TRACK_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
DRUM_COLOUR = "#d62728"


def note_spans(
    sequence: music_pb2.NoteSequence, steps_per_quarter: int = STEPS_PER_QUARTER
) -> list[tuple[int, float, float, bool, int]]:
    """(pitch, start step, end step, is_drum, instrument) of every note.

    Quantized sequences give their steps; unquantized ones are converted at their first tempo.
    """
    quantized = sequence.quantization_info.steps_per_quarter > 0
    qpm = sequence.tempos[0].qpm if sequence.tempos else 120.0
    steps_per_second = qpm / 60.0 * steps_per_quarter
    spans = []
    for note in sequence.notes:
        if quantized:
            scale = steps_per_quarter / sequence.quantization_info.steps_per_quarter
            start, end = note.quantized_start_step * scale, note.quantized_end_step * scale
        else:
            start, end = note.start_time * steps_per_second, note.end_time * steps_per_second
        # Drum hits have no meaningful length: draw them a step wide.
        end = max(end, start + (1.0 if note.is_drum else 0.5))
        spans.append((note.pitch, start, end, note.is_drum, note.instrument))
    return spans


def _pitch_range(all_spans: Sequence[list], margin: int = 2) -> tuple[int, int]:
    pitches = [span[0] for spans in all_spans for span in spans if not span[3]]
    if not pitches:
        return 58, 72
    return min(pitches) - margin, max(pitches) + margin


def drum_lanes(all_spans: list[list], low: int) -> tuple[list[list], int]:
    """Spans with each drum hit moved to its class's lane (one row per drum class, kick lowest),
    the lanes below the pitched notes; and the new bottom of the y range. Without drums: as is."""
    if not any(span[3] for spans in all_spans for span in spans):
        return all_spans, low
    pitched = any(not span[3] for spans in all_spans for span in spans)
    first_lane = low - NUM_DRUM_CLASSES - 1 if pitched else 0
    moved = [
        [
            (first_lane + int(DRUM_PITCH_TO_CLASS[span[0]]), *span[1:])
            if span[3] and DRUM_PITCH_TO_CLASS[span[0]] >= 0
            else span
            for span in spans
        ]
        for spans in all_spans
    ]
    return moved, first_lane - 1


def _draw_panel(ax, spans, num_steps: int, steps_per_bar: int, title: str) -> None:
    instruments = sorted({span[4] for span in spans if not span[3]})
    colour_of = {inst: TRACK_COLOURS[i % len(TRACK_COLOURS)] for i, inst in enumerate(instruments)}
    boxes, colours = [], []
    for pitch, start, end, is_drum, instrument in spans:
        boxes.append(Rectangle((start, pitch - 0.45), end - start, 0.9))
        colours.append(DRUM_COLOUR if is_drum else colour_of[instrument])
    ax.add_collection(
        PatchCollection(boxes, facecolors=colours, edgecolors="black", linewidths=0.3)
    )
    for step in range(0, num_steps + 1, STEPS_PER_QUARTER):
        bar_line = step % steps_per_bar == 0
        ax.axvline(step, color="0.3" if bar_line else "0.85", linewidth=0.8 if bar_line else 0.4)
    ax.set_xlim(0, num_steps)
    ax.set_ylabel("pitch", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=8, loc="left")


def _label_drum_lanes(ax, first_lane: int, high: int) -> None:
    lanes = list(range(first_lane, first_lane + NUM_DRUM_CLASSES))
    pitch_ticks = [t for t in ax.get_yticks() if lanes[-1] + 2 <= t <= high]
    ax.set_yticks(lanes + pitch_ticks)
    ax.set_yticklabels(list(DRUM_CLASS_NAMES) + [str(int(t)) for t in pitch_ticks], fontsize=6)
    ax.set_ylabel("pitch / drum", fontsize=7)


def plot_sequences(
    panels: Sequence[tuple[str, music_pb2.NoteSequence]],
    path: str | Path,
    num_steps: int,
    steps_per_bar: int = 16,
    title: str | None = None,
) -> Path:
    """Write one PNG with a piano-roll panel per (caption, sequence), top to bottom."""
    if not panels:
        raise ValueError("nothing to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    all_spans = [note_spans(sequence) for _, sequence in panels]
    low, high = _pitch_range(all_spans)
    all_spans, low = drum_lanes(all_spans, low)
    if not any(not span[3] for spans in all_spans for span in spans):
        high = low + NUM_DRUM_CLASSES + 1  # drums only: the lanes are the whole panel
    width = min(4.0 + num_steps / 16.0, 24.0)
    panel_height = 0.6 + 0.045 * (high - low)
    top, bottom = 0.45 if title else 0.15, 0.5  # inches for the title and the x axis label
    height = panel_height * len(panels) + top + bottom
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, height), sharex=True, squeeze=False)
    # Fixed margins in inches: tight_layout costs seconds on a tall strip of panels.
    fig.subplots_adjust(
        left=0.7 / width,
        right=1 - 0.2 / width,
        bottom=bottom / height,
        top=1 - top / height,
        hspace=0.35 / panel_height,
    )
    for ax, (caption, _), spans in zip(axes[:, 0], panels, all_spans, strict=True):
        _draw_panel(ax, spans, num_steps, steps_per_bar, caption)
        ax.set_ylim(low, high)
        if any(span[3] for spans in all_spans for span in spans):
            _label_drum_lanes(ax, low + 1, high)
    axes[-1, 0].set_xlabel(f"step (16th notes; a line every {steps_per_bar} steps = 1 bar)")
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.12 / height)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(
    x: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    ylabel: str,
    title: str,
    xlabel: str = "alpha (0 = A, 1 = B)",
) -> Path:
    """One line per name: ``curves[name] = (mean, low, high)`` over x; the band is the interval."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    for name, (mean, low, high) in curves.items():
        (line,) = ax.plot(x, mean, marker="o", markersize=3, label=name)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
