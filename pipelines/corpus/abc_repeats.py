"""The order in which a player plays the bars of a tune: repeats and first/second endings.

Works on bar marks only (no notes), so it is cheap and easy to test. The rules are the ones
folk musicians read ABC by:

- `:|` sends the player back to the last `|:`; without one, to the start of the tune or to the
  bar after the previous repeated section (so `A :| B :|` plays AABB).
- An ending (`[1`, `[2`, `|1`, `:|2` ...) lasts until a bar closed by a repeat or a double/final
  bar, or until the next ending or `|:`. On pass k the player skips the endings numbered below k.
- A missing `:|` at the end of ending k is inferred when ending k+1 follows it directly.
- A `:|` inside the last ending does not repeat again; one inside ending k repeats once more only
  when an ending k+1 follows.
"""

from __future__ import annotations

import dataclasses


class RepeatError(ValueError):
    """The repeat marks do not describe a finite performance."""


@dataclasses.dataclass
class BarMarks:
    """What the bar lines around one bar say about repeats."""

    start_repeat: bool = False  # the bar opens with `|:`
    end_repeat: bool = False  # the bar closes with `:|`
    ending: int | None = None  # an ending bracket numbered so opens at this bar
    double_bar: bool = False  # the bar closes with `||`, `|]` or `[|`


def ending_of_each_bar(bars: list[BarMarks]) -> list[int | None]:
    """The ending (volta) number each bar belongs to, or None outside endings."""
    endings: list[int | None] = []
    current: int | None = None
    for bar in bars:
        if bar.ending is not None:
            current = bar.ending
        elif bar.start_repeat:
            current = None
        endings.append(current)
        if bar.end_repeat or bar.double_bar:
            current = None
    return endings


def play_order(bars: list[BarMarks]) -> list[int]:
    """Indices of `bars` in the order they are played."""
    endings = ending_of_each_bar(bars)
    order: list[int] = []
    section_start = 0  # where the current repeated section begins
    pass_number = 1  # how many times the player has entered the current section
    turn = -1  # the last bar the player jumped back from; bars after it are new ground
    limit = 8 * len(bars) + 8
    i = 0
    while i < len(bars):
        if len(order) > limit:
            raise RepeatError("repeat marks loop forever")
        bar, ending = bars[i], endings[i]
        if i > turn and (bar.start_repeat or (pass_number > 1 and ending is None)):
            section_start, pass_number = i, 1  # a new section begins here
        if ending is not None and ending != pass_number:
            if ending < pass_number:
                i += 1  # an ending already played on an earlier pass
                continue
            if ending == pass_number + 1 and i > turn and i > 0 and endings[i - 1] == pass_number:
                # ending k ran straight into ending k+1: the `:|` was left out
                turn, pass_number, i = i - 1, pass_number + 1, section_start
                continue
        order.append(i)
        if bar.end_repeat:
            another_ending = i + 1 < len(bars) and endings[i + 1] == pass_number + 1
            if pass_number == 1 or (ending == pass_number and another_ending):
                turn, pass_number, i = i, pass_number + 1, section_start
                continue
            section_start, pass_number, turn = i + 1, 1, i  # the section is done
        i += 1
    return order
