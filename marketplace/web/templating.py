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

Every call a template makes (``url_for(...)``, ``csrf_token()``, a macro) goes through
``Context.call``, which works out on each call whether the callable wants the context, the
evaluation context or the environment passed first. ``TemplateContext`` knows the answer for the
callables templates call most and calls them straight.

Every ``{{ value }}`` of an autoescaped template is escaped into a ``Markup`` string that is then
only joined into the page. ``TemplateCodeGenerator`` has the compiled template escape it into
text instead (``escape_text``): the same characters, without building a ``Markup`` for each.
"""

from collections.abc import MutableMapping
from types import BuiltinFunctionType, FunctionType, MappingProxyType
from typing import Any

from flask.templating import Environment
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, Macro
from markupsafe import _escape_inner


class TemplateContext(Context):
    """Jinja's context, whose ``call`` skips Jinja's general dispatch for the three kinds of
    callable templates call on every render: a macro (it takes the evaluation context), a
    function that asks for nothing (no ``pass_context``-style mark) and a built-in method
    (``"a b".split``). Jinja's dispatch asks each callable twice, through ``hasattr`` on the
    callable and on a new ``__call__`` wrapper, what it wants: about 1 µs a call, five times the
    call of a plain function itself (docs/performance.md, "What limits them"). Any other
    callable goes through Jinja's own ``call``."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's own signature
        kind = type(__obj)
        if kind is Macro:
            args = (__self.eval_ctx, *args)
        elif not (kind is BuiltinFunctionType or (kind is FunctionType and not hasattr(__obj, "jinja_pass_arg"))):
            return super().call(__obj, *args, **kwargs)
        # What Jinja passes for a context it hands on; these callables take none.
        kwargs.pop("_loop_vars", None)
        kwargs.pop("_block_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )


def escape_text(value: Any) -> str:
    """What ``markupsafe.escape`` writes for ``value``, as text: a value with ``__html__`` is
    already safe, anything else is turned into text and escaped. An output is only joined into
    the page, so the ``Markup`` that ``escape`` wraps each one in is not needed. Building those
    cost 0.9 million instructions of the 12.6 of a chain member's problem page, which writes
    about 220 values (docs/performance.md, "What limits them")."""
    if type(value) is str:
        return _escape_inner(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape_inner(str(value))


class TemplateCodeGenerator(CodeGenerator):
    """Jinja's code generator, whose compiled templates escape each ``{{ value }}`` with
    ``escape_text`` where they are autoescaped. Where autoescaping can change during the
    render (``{% autoescape %}`` with a variable) Jinja's own code is kept."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        self.writeline(f"from {__name__} import escape_text")
        super().visit_Template(node, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape:
            return super()._output_child_pre(node, frame, finalize)
        self.write("escape_text(")
        if finalize.src is not None:
            self.write(finalize.src)


class TemplateEnvironment(Environment):
    """Flask's environment, with plain-dict template globals once ``freeze_globals`` has run,
    ``TemplateContext`` as every template's context and ``TemplateCodeGenerator`` compiling
    them."""

    context_class = TemplateContext
    code_generator_class = TemplateCodeGenerator

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        if isinstance(self.globals, MappingProxyType):
            return {**self.globals, **(d or {})}
        return super().make_globals(d)


def freeze_globals(environment: Environment) -> None:
    """Make the environment's globals read-only: an extension or a view that adds one later
    gets a ``TypeError`` instead of templates that silently lack it."""
    environment.globals = MappingProxyType(dict(environment.globals))  # type: ignore[assignment]
