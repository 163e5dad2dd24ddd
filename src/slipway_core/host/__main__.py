"""Entry point of the zipapp (and of `python -m slipway_core.host`)."""

import sys

from slipway_core.host.main import main

sys.exit(main())
