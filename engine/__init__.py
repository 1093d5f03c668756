"""cift-engine: the order-matching daemon of CIFT Markets."""

import os as _os

# numpy (journal replay, sinks) loads OpenBLAS, which starts one worker thread per core that
# polls for work: CPU taken from the event loop on a pinned core, for linear algebra the engine
# never does. One thread (none extra) unless the environment says otherwise; this must run
# before numpy is first imported, which every entry point does after importing `engine`.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
