"""The templates' Jinja environment, whose globals are fixed once the app is built.

Jinja gives each template a ``ChainMap`` over the environment's globals, so that a global added
after the template was loaded still reaches it. Every lookup in a ``ChainMap`` runs Python code
for each of its maps. Each ``{% from "..." import ... %}`` compares the importing template's
globals with the imported template's, one key at a time, and each render copies them. On a
member's page that came to 7% of the request (docs/performance.md, "Instructions per request").

Jinja's own advice is to add no global once a template is loaded (``Environment.make_globals``).
``freeze_globals`` turns that advice into a rule: once the app is built, the environment's
globals are read-only and adding one raises. A template loaded after that can then hold its
globals as one plain dict, with the same keys and values as the ``ChainMap`` it replaces.
"""

from collections.abc import MutableMapping
from types import MappingProxyType
from typing import Any

from flask.templating import Environment


class TemplateEnvironment(Environment):
    """Flask's environment, with plain-dict template globals once ``freeze_globals`` has run."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        if isinstance(self.globals, MappingProxyType):
            return {**self.globals, **(d or {})}
        return super().make_globals(d)


def freeze_globals(environment: Environment) -> None:
    """Make the environment's globals read-only: an extension or a view that adds one later
    gets a ``TypeError`` instead of templates that silently lack it."""
    environment.globals = MappingProxyType(dict(environment.globals))  # type: ignore[assignment]
