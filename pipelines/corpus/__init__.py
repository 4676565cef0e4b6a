"""The default corpus: ABC tunes shipped with music21, played and written as MIDI files (`data/`)."""
