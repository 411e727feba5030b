"""The WSGI entry point: ``gunicorn wsgi:app`` (and ``flask``, for the job worker and the CLI).

Everything built up to here (the modules, their functions and classes, the app with its rules)
lives as long as the process, so it is moved out of the garbage collector's sight with
``gc.freeze()``. Otherwise every full collection walks those 170,000 objects again: about 100 ms
with every thread of the process stopped, a few times a minute under load, which was the whole
of a page's p99 (docs/performance.md, "Garbage collection"). Under gunicorn without
``--preload`` each worker imports this module, so each freezes its own; with ``--preload`` the
master freezes before it forks, which also keeps those pages shared between the workers.
"""

import gc

from marketplace import create_app

app = create_app()
gc.freeze()
