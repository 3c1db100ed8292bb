"""impasto studio: a web page to paint photos and watch the picture form (``impasto serve``).

``app`` (the HTTP API and the page), ``store`` (the job table and files under ``--data-dir``),
``worker`` (the process running jobs one at a time), ``cluster`` (jobs as Ray tasks, several
at once: ``impasto serve --ray``), ``progress`` (events to previews and
progress), ``forms`` (request fields to configs), ``catalogue`` (the paintings on offer),
``static/`` (the page). FastAPI and uvicorn are imported only here, never by the library.
"""
