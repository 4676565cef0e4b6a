import logging
import warnings

# note-seq imports pydub, which warns at import time when ffmpeg is missing; nothing here uses
# pydub's audio decoding, so the warning is noise in every stage's log.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)

_APITOOLS_WARNING = "apitools not found, and bigquery client libraries are not available"


def _not_apitools_warning(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_APITOOLS_WARNING))


# Beam logs this on the root logger at import when its gcp extra is absent; no stage uses BigQuery.
logging.getLogger().addFilter(_not_apitools_warning)
