"""`python -m pipelines.multitrack --input data --output data_multitrack`."""

import logging

from pipelines.multitrack import build

# build.main, not a copy of it here: Beam workers unpickle its classes by module name.
logging.getLogger().setLevel(logging.WARNING)
build.main()
