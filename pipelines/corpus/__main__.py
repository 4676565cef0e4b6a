"""`python -m pipelines.corpus --output data`: build the default corpus."""

import logging

from pipelines.corpus import build

# build.main, not a copy of it here: Beam workers unpickle its classes by module name, and
# "__main__" names another module in a worker.
logging.getLogger().setLevel(logging.WARNING)
build.main()
