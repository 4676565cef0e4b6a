import warnings

# note-seq imports pydub, which warns at import time when ffmpeg is missing; nothing here uses
# pydub's audio decoding, so the warning is noise in every stage's log.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)
