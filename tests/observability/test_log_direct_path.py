"""The two per-request events skip structlog's per-call machinery (``logwrite.emit``) and still write,
byte for byte, what structlog wrote before: same fields in the same order, same redaction, same
level filter, same request facts noted, in both formats; and so does the general path
(``fast_paths=False``: every event through structlog's bound loggers).

The "before" side is structlog's bound logger writing with ``structlog.WriteLogger``, as
``configure_logging`` set it up before the direct path existed, with the same processors; only the
clock is pinned, so that the timestamps match.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any, cast

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from certbound.observability import requestlog
from certbound.observability.logs import LogFormat, _IsoUtcStamper, configure_logging
from certbound.observability.logwrite import emit, flush_logs
from certbound.observability.requestlog import _Response, record_request
from certbound.server.clientauth import events
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate
from tests.observability.conftest import logging_to

NOW_NS = 1_796_000_000_123_456_789
SECRET = "Zm9vYmFyLXNlY3JldC1ub3QtdG8tYmUtbG9nZ2VkLWV2ZXI"  # 47 URL-safe characters
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJjbGllbnQiLCJleHAiOjF9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
THUMBPRINT = "o6akD8Uo9O8Rwh01H0hrUY3rq8KaCED2EEEWWRIeIkY"
NON_ASCII_DN = "CN=Jürgen Müller,O=Société Générale"

AUTH_OK: dict[str, Any] = {
    "client_id": "tls-dn", "endpoint": "/token", "method": "tls_client_auth",
    "presented": "client_id+certificate", "outcome": "success", "reason": "ok",
    "cert_x5t_s256": THUMBPRINT, "cert_subject": "CN=bench-client,O=certbound bench",
    "cert_issuer": "CN=certbound bench CA,O=certbound bench", "cert_source": "tls", "tls_verified": True,
    "tls_error": None,
}  # fmt: skip
REQUEST: dict[str, Any] = {
    "method": "POST", "path": "/token", "status": 200, "duration_ms": 1.234, "client": "127.0.0.1",
    "endpoint": "/token", "http_version": "1.1", "client_id": "tls-dn", "auth_method": "tls_client_auth",
    "cert_x5t_s256": THUMBPRINT, "cert_source": "tls", "tls_verified": True,
}  # fmt: skip

#: (logger, level, event, fields)
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("certbound.auth", "info", "client_auth", AUTH_OK),
    ("certbound.auth", "warning", "client_auth", {
        **AUTH_OK, "outcome": "failure", "reason": "tls_client_auth.subject_mismatch",
        "detail": "certificate subject does not match the registered tls_client_auth_subject_dn",
    }),
    ("certbound.auth", "warning", "client_auth", {  # a JWT where a client_id goes, non-ASCII names
        **AUTH_OK, "client_id": JWT, "outcome": "failure", "reason": "client.unknown",
        "detail": f"assertion {JWT} refused", "cert_subject": NON_ASCII_DN, "cert_issuer": "CN=Ünïcödé CA",
    }),
    ("certbound.auth", "warning", "client_auth", {  # None values, opaque runs in plain and public fields
        "client_id": None, "endpoint": "/introspect", "method": None, "presented": "none",
        "outcome": "failure", "reason": "client.unknown", "detail": f"opaque {SECRET} here",
        "cert_x5t_s256": SECRET, "tls_error": None,
    }),
    ("certbound.auth", "error", "client_auth", {
        **AUTH_OK, "outcome": "error", "reason": "internal.error", "detail": "Boom", "tls_verified": None,
    }),
    ("certbound.request", "info", "request", REQUEST),
    ("certbound.request", "error", "request", {
        **REQUEST, "status": 500, "reason": "server.unhandled_error", "client": None, "http_version": None,
        "duration_ms": 12.5,
    }),
    ("certbound.request", "info", "request", {
        **REQUEST, "path": f"/register/{SECRET}", "client_id": "c" * 256 + "…", "status": 401,
        "reason": "secret.mismatch",
    }),
    ("certbound.test", "info", "odd fields", {
        "client_secret": SECRET, "password": "", "form": {"client_assertion": JWT, "grant_type": "x"},
        "headers": [(b"authorization", b"Bearer abcdefgh123"), (b"host", b"h")], "count": 3,
        "ratio": 0.5, "flag": False, "raw": b"bytes", "when": dt.date(2026, 1, 2),
        "level": "ignored", "timestamp": "replaced", "logger": "renamed", "big": 2**70,
    }),
    ("certbound.test", "debug", "debug event", {"n": 1}),
    ("certbound.test", "critical", "critical event", {"n": 2, "reason": "x.y"}),
]  # fmt: skip
IDS = [f"{level}-{event}-{n}" for n, (_, level, event, _) in enumerate(CASES)]


class OldWriteLogger(structlog.WriteLogger):
    """What configure_logging gave structlog before: its WriteLogger, carrying the logger's name."""

    def __init__(self, file: IO[str], name: str) -> None:
        super().__init__(cast(Any, file))
        self.name = name


@contextmanager
def configured(
    path: Path, level: str, fmt: LogFormat, *, before: bool, fast_paths: bool = True
) -> Iterator[None]:
    """Logging to `path` as configure_logging sets it up now, or (`before`) as it did before."""
    with open(path, "w", encoding="utf-8") as stream, logging_to(stream, level, fmt, fast_paths=fast_paths):
        for processor in structlog.get_config()["processors"]:
            if isinstance(processor, _IsoUtcStamper):
                processor._clock = lambda: NOW_NS
        if before:
            structlog.configure(
                logger_factory=lambda *args: OldWriteLogger(stream, str(args[0]) if args else "")
            )
        yield


def in_request(log_one: Callable[[], None]) -> dict[str, Any]:
    """Log inside a request's context; returns the facts noted for its request event."""
    facts: dict[str, Any] = {}
    token = requestlog._facts.set(facts)
    try:
        log_one()
    finally:
        requestlog._facts.reset(token)
    return facts


def structlog_call(name: str, level: str, event: str, fields: dict[str, Any]) -> None:
    getattr(structlog.get_logger(name), level)(event, **fields)


def emit_call(name: str, level: str, event: str, fields: dict[str, Any]) -> None:
    emit(structlog.get_logger(name), level, event, dict(fields))


def log_cases(
    path: Path,
    level: str,
    fmt: LogFormat,
    *,
    before: bool,
    cases: list[tuple[str, str, str, dict[str, Any]]],
    fast_paths: bool = True,
) -> tuple[bytes, list[dict[str, Any]]]:
    call = structlog_call if before else emit_call
    with configured(path, level, fmt, before=before, fast_paths=fast_paths):
        facts = [in_request(lambda case=case: call(*case)) for case in cases]  # type: ignore[misc]
    return path.read_bytes(), facts


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_the_same_bytes_as_structlog_wrote(tmp_path: Path, level: str, fmt: LogFormat) -> None:
    expected, expected_facts = log_cases(tmp_path / "before", level, fmt, before=True, cases=CASES)
    general, general_facts = log_cases(
        tmp_path / "off", level, fmt, before=False, cases=CASES, fast_paths=False
    )
    written, facts = log_cases(tmp_path / "after", level, fmt, before=False, cases=CASES)
    assert written.decode().splitlines() == expected.decode().splitlines()
    assert written == expected
    assert facts == expected_facts
    assert general == expected
    assert general_facts == expected_facts
    threshold = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
    logged = [case for case in CASES if threshold[case[1]] >= threshold[level]]
    assert len(written.splitlines()) == len(logged)  # and nothing when filtered out
    for secret in (f"opaque {SECRET}", f"/register/{SECRET}", JWT, JWT.split(".")[2]):  # (a thumbprint
        assert secret.encode() not in written  # field is public: SECRET stays whole there, by design)


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_event_alone(
    tmp_path: Path, case: tuple[str, str, str, dict[str, Any]], fast_paths: bool
) -> None:
    expected, expected_facts = log_cases(tmp_path / "before", "debug", "json", before=True, cases=[case])
    written, facts = log_cases(
        tmp_path / "after", "debug", "json", before=False, cases=[case], fast_paths=fast_paths
    )
    assert written == expected
    assert facts == expected_facts


def test_fields_structlog_acts_on_are_left_to_structlog(tmp_path: Path) -> None:
    def with_exception(call: Callable[..., None]) -> Callable[[], None]:
        def log_one() -> None:
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                call("certbound.test", "error", "failed", {"exc_info": True, "client_id": "c1"})

        return log_one

    lines = []
    for before, call in ((True, structlog_call), (False, emit_call)):
        with configured(tmp_path / str(before), "info", "json", before=before):
            in_request(with_exception(call))
        lines.append((tmp_path / str(before)).read_text())
    assert lines[0] == lines[1]
    assert "RuntimeError: boom" in lines[1]
    with pytest.raises(TypeError), configured(tmp_path / "x", "info", "json", before=False):
        emit(structlog.get_logger("x"), "info", "event", {"event": "twice"})  # as structlog refuses it


# --- the call sites ------------------------------------------------------------------------------


def certificate(subject: str) -> ClientCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return ClientCertificate.from_der(
        cert.public_bytes(Encoding.DER), source="tls", tls_verified=False, tls_error="self-signed"
    )


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])
def test_the_call_sites_write_what_they_wrote_before(tmp_path: Path, fast_paths: bool) -> None:
    """Each request again with other durations: the kept lines (the request event's with a hole for
    its duration) write what structlog wrote."""
    cert = certificate("Jürgen Müller")

    def requests() -> list[dict[str, Any]]:
        scope = {
            "type": "http", "method": "POST", "path": "/token", "http_version": "1.1",
            "client": ("192.0.2.1", 1234), "extensions": {"tls": {SCOPE_KEY: cert}},
        }  # fmt: skip
        noted = []
        for seconds in (0.001234, 0.0567891, 1e-8, 12.5, 1e14):  # 1e+17 ms: JSON spellings differ
            for status, client_id in ((200, "tls-dn"), (401, JWT), (500, None), (404, SECRET)):

                def one(status: int = status, client_id: str | None = client_id) -> None:
                    events.record(
                        endpoint="/token", client_id=client_id,
                        registered_method="self_signed_tls_client_auth", presented="client_id+certificate",
                        outcome="success" if status == 200 else "failure",
                        reason="ok" if status == 200 else "cert.mismatch", certificate=cert,
                        detail="" if status == 200 else f"detail {SECRET}",
                    )  # fmt: skip

                facts = in_request(one)
                record_request(scope, _Response(status=status), dict(facts), seconds)
                noted.append(facts)
        return noted

    outputs = []
    for before in (True, False):
        with configured(tmp_path / str(before), "info", "json", before=before, fast_paths=fast_paths):
            noted = requests()
        outputs.append(((tmp_path / str(before)).read_bytes(), noted))
    assert outputs[0] == outputs[1]
    lines = outputs[1][0].decode().splitlines()
    assert len(lines) == 40
    durations = [json.loads(line)["duration_ms"] for line in lines if '"event":"request"' in line]
    assert durations == [1.234] * 4 + [56.789] * 4 + [0.0] * 4 + [12500.0] * 4 + [1e17] * 4


# --- the direct path is taken, and left when it must be --------------------------------------------


def functions_called(log_one: Callable[[], None], where: str = "/structlog/") -> set[str]:
    """The names of the functions whose file's path holds `where` that `log_one` called."""
    called: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and where in frame.f_code.co_filename:
            called.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        log_one()
    finally:
        sys.setprofile(None)
    return called


def test_the_configured_path_skips_structlogs_per_call_machinery(tmp_path: Path) -> None:
    with configured(tmp_path / "log", "info", "json", before=False):
        direct = functions_called(lambda: emit_call(*CASES[0]))
        through_structlog = functions_called(lambda: structlog_call(*CASES[0]))
    assert "_process_event" in through_structlog
    assert not {"_process_event", "_proxy_to_logger", "__getattr__", "add_log_level"} & direct
    assert len((tmp_path / "log").read_text().splitlines()) == 2


def test_with_the_fast_paths_off_structlog_does_every_event(tmp_path: Path) -> None:
    with configured(tmp_path / "log", "info", "json", before=False, fast_paths=False):
        general = functions_called(lambda: emit_call(*CASES[0]))
    assert {"_process_event", "_proxy_to_logger", "add_log_level"} <= general
    assert len((tmp_path / "log").read_text().splitlines()) == 1


def test_capture_logs_still_sees_the_events(tmp_path: Path) -> None:
    with configured(tmp_path / "log", "info", "json", before=False):
        with capture_logs() as logs:
            emit_call(*CASES[0])
        emit_call(*CASES[5])  # the configuration is back: written
    assert [e["event"] for e in logs] == ["client_auth"]
    assert logs[0]["log_level"] == "info"
    lines = (tmp_path / "log").read_text().splitlines()
    assert len(lines) == 1
    assert '"event":"request"' in lines[0]


def test_cached_loggers_keep_their_first_configuration_as_structlog_does(tmp_path: Path) -> None:
    def sequence(call: Callable[[Any], None]) -> tuple[int, int]:
        first, second = tmp_path / "first", tmp_path / "second"
        with open(first, "w") as a, open(second, "w") as b, logging_to(a):
            configure_logging("info", "json", stream=a)  # cached on first use, as in the server
            log = structlog.get_logger("certbound.request")
            call(log)
            configure_logging("warning", "json", stream=b)
            call(log)  # structlog keeps the logger it made first: to `a`, at info
            call(structlog.get_logger("certbound.request"))  # a new one: to `b`, at warning: nothing
            flush_logs()
            return len(first.read_text().splitlines()), len(second.read_text().splitlines())

    through_structlog = sequence(lambda log: log.info("request", **REQUEST))
    direct = sequence(lambda log: emit(log, "info", "request", dict(REQUEST)))
    assert direct == through_structlog == (2, 0)


def test_the_direct_path_follows_the_processor_list() -> None:
    """A processor added to the configured list is run by the direct path too (never skipped)."""
    import structlog

    from certbound.observability.logwrite import DirectPath

    def extra(logger: object, method_name: str, event_dict: dict[str, object]) -> dict[str, object]:
        return event_dict

    def render(logger: object, method_name: str, event_dict: dict[str, object]) -> str:
        return ""

    processors = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.StackInfoRenderer(),
        extra,
        structlog.processors.format_exc_info,
        render,
    ]
    direct = DirectPath.of(processors, structlog.make_filtering_bound_logger(20), 20)
    assert direct is not None
    assert direct.steps == (extra,)
    assert direct.render is render
    assert direct.expected == processors
    assert direct.expected is not processors


def test_no_direct_path_where_its_assumptions_do_not_hold(tmp_path: Path) -> None:
    """A list that does not start with the level and the logger name, or a wrapper class that keeps
    its logger or processors elsewhere: no direct path, and the events still go through structlog."""
    from certbound.observability.logwrite import DirectPath

    def render(logger: object, method_name: str, event_dict: dict[str, object]) -> str:
        return ""

    filtering = structlog.make_filtering_bound_logger(20)
    level, name = structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name
    assert DirectPath.of([level, name, render], filtering, 20) is not None
    assert DirectPath.of([name, level, render], filtering, 20) is None
    assert DirectPath.of([level, render], filtering, 20) is None
    assert DirectPath.of([level, name], filtering, 20) is None  # no renderer after them

    class Elsewhere(filtering):  # type: ignore[misc, valid-type]
        def __init__(self, logger: Any, processors: Any, context: Any) -> None:
            super().__init__(logger, list(processors), context)  # a copy: not the configured list

    assert DirectPath.of([level, name, render], Elsewhere, 20) is None
    with configured(tmp_path / "log", "info", "json", before=False):
        structlog.configure(wrapper_class=Elsewhere)
        called = functions_called(lambda: emit_call(*CASES[0]))
    assert "_process_event" in called
    assert len((tmp_path / "log").read_text().splitlines()) == 1


# --- lines of repeating events are kept up to their timestamp ----------------------------------------


def ticking_clock() -> Callable[[], int]:
    """A clock that moves 1.5 ms per reading, from NOW_NS: every line gets its own timestamp."""
    now = [NOW_NS]

    def clock() -> int:
        now[0] += 1_500_000
        return now[0]

    return clock


def log_repeated(
    path: Path, fmt: LogFormat, *, before: bool, cases: list[tuple[str, str, str, dict[str, Any]]]
) -> tuple[bytes, list[dict[str, Any]]]:
    facts = []
    with configured(path, "debug", fmt, before=before):
        for processor in structlog.get_config()["processors"]:
            if isinstance(processor, _IsoUtcStamper):
                processor._clock = ticking_clock()
        for case in cases * 3:
            if before:
                facts.append(in_request(lambda case=case: structlog_call(*case)))  # type: ignore[misc]
            else:
                name, level, event, fields = case
                facts.append(
                    in_request(
                        lambda: emit(structlog.get_logger(name), level, event, dict(fields), repeats=True)  # noqa: B023
                    )
                )
    return path.read_bytes(), facts


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_repeated_events_write_the_same_bytes_as_structlog(tmp_path: Path, fmt: LogFormat) -> None:
    """Every case three times: the second and third lines come from the kept line (JSON), with their
    own timestamps, and the request facts are noted each time."""
    expected, expected_facts = log_repeated(tmp_path / "before", fmt, before=True, cases=CASES)
    written, facts = log_repeated(tmp_path / "after", fmt, before=False, cases=CASES)
    assert written.decode().splitlines() == expected.decode().splitlines()
    assert facts == expected_facts
    lines = written.decode().splitlines()
    assert len(set(lines)) == len(lines)  # no two alike: each has its own timestamp


def test_a_repeated_event_skips_redaction_and_rendering(tmp_path: Path) -> None:
    def certbound_functions(log_one: Callable[[], None]) -> set[str]:
        return functions_called(log_one, "/certbound/observability/")

    name, level, event, fields = CASES[0]

    def once() -> None:
        in_request(lambda: emit(structlog.get_logger(name), level, event, dict(fields), repeats=True))

    with configured(tmp_path / "log", "info", "json", before=False):
        first, second = certbound_functions(once), certbound_functions(once)
        with_list = {**fields, "detail": ["a list"]}
        unkept = certbound_functions(
            lambda: emit(structlog.get_logger(name), level, event, with_list, repeats=True)
        )
    assert {"redact_event", "_render_json"} <= first
    assert not {"redact_event", "_render_json"} & second
    assert {"capture_event", "text"} <= second  # the facts noted and the time stamped, every time
    assert {"redact_event", "_render_json"} <= unkept  # a container value: never kept
    assert len((tmp_path / "log").read_text().splitlines()) == 3


def test_values_equal_as_keys_but_not_as_json_are_kept_apart(tmp_path: Path) -> None:
    name = "certbound.auth"
    with configured(tmp_path / "log", "info", "json", before=False):
        for value in (1, True, 1.0, "1", 1, True, 1.0, "1"):
            emit(structlog.get_logger(name), "info", "client_auth", {"n": value}, repeats=True)
    rendered = [line.split('"n":')[1].split(",")[0] for line in (tmp_path / "log").read_text().splitlines()]
    assert rendered == ["1", "true", "1.0", '"1"'] * 2


def test_kept_lines_are_bounded() -> None:
    from certbound.observability.logwrite import RepeatedLines

    kept = RepeatedLines(lambda: "T", requestlog.capture_event, max_lines=3)
    for n in range(7):
        kept.keep((n,), f'{{"n":{n},"timestamp":"T"}}', "T")
        assert len(kept.lines) <= 3
    assert kept.lines[(6,)] == '{"n":6,"timestamp":"'
    kept.keep(("other",), '{"timestamp":"T","n":1}', "T")  # the timestamp is not last: not kept
    assert ("other",) not in kept.lines


def test_a_long_line_is_never_kept() -> None:
    """A client chooses its certificate's names, which a client_auth line carries: a 100 KB name must
    not stay in memory 1,024 times."""
    from certbound.observability.logwrite import RepeatedLines

    kept = RepeatedLines(lambda: "T", requestlog.capture_event, max_line=38)
    kept.keep(("short",), '{"n":"' + "x" * 14 + '","timestamp":"T"}', "T")  # 38 characters
    kept.keep(("long",), '{"n":"' + "x" * 15 + '","timestamp":"T"}', "T")
    assert list(kept.lines) == [("short",)]
    assert RepeatedLines(lambda: "T", requestlog.capture_event).max_line == 4096


def test_zero_and_negative_zero_are_not_one_kept_line(tmp_path: Path) -> None:
    """0.0 == -0.0 (and hash alike) as keys, but their JSON differs: an event must never be written
    with the other's kept line."""
    name = "certbound.auth"
    with configured(tmp_path / "log", "info", "json", before=False):
        for value in (0.0, -0.0, -0.0, 0.0):
            emit(structlog.get_logger(name), "info", "client_auth", {"x": value}, repeats=True)
    rendered = [line.split('"x":')[1].split(",")[0] for line in (tmp_path / "log").read_text().splitlines()]
    assert rendered == ["0.0", "-0.0", "-0.0", "0.0"]


def test_a_repeated_request_event_is_written_from_its_holed_line(tmp_path: Path) -> None:
    """The request event again, another duration: no redaction, no rendering, its own duration."""
    name, level, event, fields = CASES[5]  # the request event

    def once(duration: float) -> set[str]:
        def log_one() -> None:
            emit(structlog.get_logger(name), level, event, {**fields, "duration_ms": duration},
                 repeats=True, varying="duration_ms")  # fmt: skip

        return functions_called(lambda: in_request(log_one), "/certbound/observability/")

    with configured(tmp_path / "log", "info", "json", before=False):
        first, second, third = once(1.5), once(1.55), once(1e-5)
    assert {"redact_event", "_render_json"} <= first
    assert not {"redact_event", "_render_json"} & second
    assert {"redact_event", "_render_json"} <= third  # 1e-05: spelled otherwise by orjson, never holed
    lines = (tmp_path / "log").read_text().splitlines()
    assert [json.loads(line)["duration_ms"] for line in lines] == [1.5, 1.55, 1e-5]
    assert lines[1].replace("1.55", "1.5") == lines[0]  # the same clock: only the duration differs


def test_a_holed_line_is_kept_only_where_the_value_is_found_whole() -> None:
    from certbound.observability.logwrite import RepeatedLines

    kept = RepeatedLines(lambda: "T", requestlog.capture_event, max_lines=2)
    kept.keep_holed(("a",), '{"d":1.5,"n":1,"timestamp":"T"}', "T", "d", "1.5")
    assert kept.holed[("a",)] == ('{"d":', ',"n":1,"timestamp":"')
    kept.keep_holed(("b",), '{"d":1.55,"timestamp":"T"}', "T", "d", "1.5")  # 1.5 is not the value
    kept.keep_holed(("c",), '{"x":"\\"d\\":1.5","timestamp":"T"}', "T", "d", "1.5")  # only in a string
    kept.keep_holed(("d",), '{"d":1.5,"timestamp":"U"}', "T", "d", "1.5")  # not the stamp just made
    assert list(kept.holed) == [("a",)]
    for key in ("e", "f"):
        kept.keep_holed((key,), '{"d":2.0,"timestamp":"T"}', "T", "d", "2.0")
    assert list(kept.holed) == [("f",)]  # full at 2: forgotten all at once
