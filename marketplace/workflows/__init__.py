"""The use cases that cross domains (docs/architecture.md, "Workflows").

A workflow loads and authorises what it acts on, moves each domain's state through that
domain's own functions, and sends the signal that says what happened. Domains never import a
workflow; subscribers and the web do.
"""

from flask import Flask

from marketplace.jobs.service import register_periodic
from marketplace.workflows import funding, settlement


def init_app(app: Flask) -> None:
    """The time-based jobs the workflows own."""
    register_periodic("expire problems", funding.expire_due)
    register_periodic("release held shares", settlement.release_due)
