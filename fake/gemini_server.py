#!/usr/bin/env python3
"""nanobanana fake Gemini server.

A local stand-in for Google's Gemini native image generation API
(``models/{model}:generateContent`` and ``:streamGenerateContent``), used by
the nanobanana test suite, the offline demo, the benchmark harness and the
official-SDK interoperability test.  Python 3 standard library only.

It validates requests like the real service (unknown fields, roles, MIME
types, base64, per-model ratios and sizes, thought signatures, auth), answers
with real images (PNG for gemini-2.5-flash-image; JPEG bytes declared as
``image/png`` for the Gemini 3 models, as the real service does), streams
over SSE, and injects faults on demand (control queue or ``[[fault:NAME]]``
markers in the prompt).  See fake/README.md for the full contract.

It binds loopback addresses only.
"""

import os
import sys

# The server lives in the nbfake package beside this file (split by concern;
# see nbfake/__init__.py).  This file keeps the command line unchanged.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nbfake.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
