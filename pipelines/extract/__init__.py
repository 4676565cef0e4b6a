"""The music core of the examples stage: pieces of a NoteSequence, tracks of a piece, windows of a track."""
