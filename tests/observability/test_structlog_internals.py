"""Canary: what the log fast path (``logwrite.emit``) relies on in structlog still holds.

`certbound.observability.logwrite.STRUCTLOG_INTERNALS` lists each private attribute the direct path
reads and each piece of structlog's behaviour it reproduces. Each has a check here; when structlog
changes one, the failure names it, so that the direct path is adapted (or dropped) before a structlog
upgrade can make its lines differ from structlog's own. A source scan makes sure the list is complete
for the private attributes.
"""

from __future__ import annotations

import ast
import inspect
import io
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from certbound.observability import logs, logwrite
from certbound.observability.logwrite import STRUCTLOG_INTERNALS, LineLogger
from tests.observability.conftest import logging_to

LEVELS = ("debug", "info", "warning", "error", "critical")


class Recorder:
    """A wrapped logger that records every call, whatever the method."""

    def __init__(self) -> None:
        self.name = "recorder"
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((method, args, kwargs))

        return call


def bound_logger(processors: list[Any], *, min_level: int = 10, context: dict[str, Any] | None = None) -> Any:
    cls = structlog.make_filtering_bound_logger(min_level)
    return cls(Recorder(), processors=processors, context={} if context is None else context)


def seen_by(processors_seen: list[tuple[str, list[tuple[str, Any]]]]) -> Any:
    def processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> str:
        processors_seen.append((method_name, list(event_dict.items())))
        return "line"

    return processor


# --- one check per entry of STRUCTLOG_INTERNALS ------------------------------------------------------


def check_logger_attribute() -> None:
    wrapped, processors = Recorder(), [seen_by([])]
    bound = structlog.make_filtering_bound_logger(10)(wrapped, processors=processors, context={})
    assert bound._logger is wrapped
    with logging_to(io.StringIO()):
        assert isinstance(structlog.get_logger("n").bind()._logger, LineLogger)


def check_processors_attribute() -> None:
    processors = [seen_by([])]
    bound = structlog.make_filtering_bound_logger(10)(Recorder(), processors=processors, context={})
    assert bound._processors is processors
    with logging_to(io.StringIO()):
        assert structlog.get_logger("n").bind()._processors is structlog.get_config()["processors"]


def check_event_dict_order() -> None:
    seen: list[tuple[str, list[tuple[str, Any]]]] = []
    bound_logger([seen_by(seen)]).info("ev", b=1, a=2)
    bound_logger([seen_by(seen)], context={"c": 0}).info("ev", b=1, a=2)
    assert seen == [
        ("info", [("b", 1), ("a", 2), ("event", "ev")]),
        ("info", [("c", 0), ("b", 1), ("a", 2), ("event", "ev")]),
    ]


def check_proxy_to_logger() -> None:
    bound = bound_logger([seen_by([])])
    for level in LEVELS:
        getattr(bound, level)("ev", x=1)
    assert bound._logger.calls == [(level, ("line",), {}) for level in LEVELS]

    def drop(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
        raise structlog.DropEvent

    dropping = bound_logger([drop])
    assert dropping.info("ev") is None
    assert dropping._logger.calls == []


def check_filtering() -> None:
    seen: list[tuple[str, list[tuple[str, Any]]]] = []
    bound = bound_logger([seen_by(seen)], min_level=30)
    for level in LEVELS:
        getattr(bound, level)("ev")
    assert [method for method, _ in seen] == ["warning", "error", "critical"]


def check_add_log_level() -> None:
    for level in LEVELS:
        assert structlog.stdlib.add_log_level(None, level, {}) == {"level": level}


def check_add_logger_name() -> None:
    assert structlog.stdlib.add_logger_name(SimpleNamespace(name="n"), "info", {"a": 1}) == {
        "a": 1,
        "logger": "n",
    }


def check_stack_info_renderer() -> None:
    event = {"a": 1, "event": "ev", "level": "info"}
    out = structlog.processors.StackInfoRenderer()(None, "info", dict(event))
    assert list(out.items()) == list(event.items())


def check_exception_renderer() -> None:
    assert isinstance(structlog.processors.format_exc_info, structlog.processors.ExceptionRenderer)
    event = {"a": 1, "event": "ev", "level": "info"}
    out = structlog.processors.format_exc_info(None, "info", dict(event))
    assert list(out.items()) == list(event.items())


def check_capture_logs() -> None:
    with logging_to(io.StringIO()):
        configured = structlog.get_config()["processors"]
        before = list(configured)
        with capture_logs():
            assert structlog.get_config()["processors"] is configured
            assert configured != before
        assert configured == before


def check_lazy_bind() -> None:
    stream = io.StringIO()
    with logging_to(stream):
        structlog.configure(cache_logger_on_first_use=True)
        proxy = structlog.get_logger("n")
        first = proxy.bind()
        assert type(first) is structlog.get_config()["wrapper_class"]
        assert first._logger.name == "n"
        proxy.info("ev")  # first use: cached from now on
        assert proxy.bind() is proxy.bind()
        logwrite.emit(proxy, "info", "again", {})
    assert stream.getvalue().count('"logger":"n"') == 2


CHECKS: dict[str, Callable[[], None]] = {
    "BoundLoggerBase._logger": check_logger_attribute,
    "BoundLoggerBase._processors": check_processors_attribute,
    "BoundLoggerBase._process_event": check_event_dict_order,
    "BoundLoggerBase._proxy_to_logger": check_proxy_to_logger,
    "make_filtering_bound_logger": check_filtering,
    "add_log_level": check_add_log_level,
    "add_logger_name": check_add_logger_name,
    "StackInfoRenderer": check_stack_info_renderer,
    "ExceptionRenderer": check_exception_renderer,
    "capture_logs": check_capture_logs,
    "BoundLoggerLazyProxy.bind": check_lazy_bind,
}


def test_every_internal_listed_has_a_check() -> None:
    assert set(CHECKS) == set(STRUCTLOG_INTERNALS)


@pytest.mark.parametrize("name", list(STRUCTLOG_INTERNALS))
def test_structlog_internal_still_holds(name: str) -> None:
    try:
        CHECKS[name]()
    except Exception as exc:  # AssertionError, AttributeError, TypeError: each means the same here
        pytest.fail(
            f"structlog {structlog.__version__} changed {name}, which the log fast path relies on: "
            f"{STRUCTLOG_INTERNALS[name]} ({type(exc).__name__}: {exc}). Adapt "
            "certbound.observability.logwrite.emit / DirectPath to it, or drop the direct path.",
            pytrace=False,
        )


def _getattr_constant(node: ast.AST) -> str | None:
    """The name in ``getattr(x, "name", ...)``, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"):
        return None
    if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant):
        return None
    return str(node.args[1].value)


def test_the_list_names_every_private_attribute_the_log_code_reads() -> None:
    """Private attributes read in logwrite.py and logs.py that those modules do not define themselves
    (as an assignment or a function) belong to someone else: structlog's must all be listed."""
    read: set[str] = set()
    for module in (logwrite, logs):
        tree = ast.parse(inspect.getsource(module))
        own = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                read.add(node.attr)
            elif (name := _getattr_constant(node)) is not None:
                read.add(name)
        read -= own
    private = {name for name in read if name.startswith("_") and not name.startswith("__")}
    listed = {name.rpartition(".")[2] for name in STRUCTLOG_INTERNALS}
    assert private == {"_logger", "_processors"}
    assert private <= listed
