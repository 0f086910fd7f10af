"""``python3 -m nbfake`` (with fake/ on sys.path): the fake server."""

import sys

from .server import main

sys.exit(main())
