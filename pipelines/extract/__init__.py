"""The music core: pieces of a NoteSequence, tracks of a piece, windows of a track, and the
window of a user's MIDI file (midi_input)."""
