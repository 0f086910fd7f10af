"""nanobanana fake Gemini server, as a package split by concern.

Entry point: ``python3 fake/gemini_server.py`` (or ``python3 -m nbfake`` with
``fake/`` on the path).  Modules, in dependency order:

- ``util``      small helpers (parsing, base64 memo, ids, the stop event)
- ``errors``    Google-shaped errors and constant messages
- ``models``    the image models: ratios, sizes, pixel tables, limits
- ``fixtures``  PNG/JPEG/noise image generation and the image cache
- ``validate``  request schema and semantic validation
- ``state``     request log, fault queue, thought signatures
- ``faults``    the fault catalogue and the errors faults produce
- ``reply``     JSON rendering with blobs, the Reply sent by the HTTP layer
- ``answer``    model answers: parts, images, thoughts, usage
- ``sse``       streaming rendering (SSE events / JSON array)
- ``app``       routing, auth, the generate and control handlers
- ``protocol``  the HTTP/1.1 layer and the threaded server
- ``server``    the command line and main()
"""
