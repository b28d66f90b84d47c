"""`python -m bench.chart`: what it reads from the bench's JSON is what it plots, and the PNG it writes.

The reading needs no matplotlib and is tested everywhere; the drawing is tested where matplotlib is
installed (the ``bench`` extra, which CI does not install).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from bench.chart import Panel, chart_data, gateway_records, load_results, main


def _side(rps: float, server_us: float | None) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "server_us": server_us, "server_cpu": 0.5,
            "gen_cpu": 0.2, "errors": 0, "exhausted": False, "runs": 3, "resumed": 0.0}  # fmt: skip


BENCH: dict[str, Any] = {
    "command": "python -m bench.run --steady",
    "servers": {"certbound": "certbound w1", "peer": "oidc-provider 9.13.3"},
    "rows": [
        {"scenario": "cc-tls", "certbound": _side(5000, 100.0), "peer": _side(2500, 400.0)},
        {"scenario": "introspect-opaque", "certbound": _side(6000, 125.0), "peer": None},
        {"scenario": "revoke", "certbound": _side(900, None), "peer": _side(2000, None)},
    ],
    "runs": [],
}

GATEWAY_NESTED = {
    "scenarios": {
        "jwt-strict": {
            "certbound gateway": {"rps": 9000, "rps_per_core": 9500, "added_p50_ms": 0.4, "errors": 0},
            "mod_oauth2": {"rps": 11000, "rps_per_core": 11000},
            "mod_auth_openidc": {"rps": 4200},
        },
        "new-connection": {"certbound gateway": {"rps": 600, "server_cpu": 0.5}, "mod_oauth2": "n/a"},
    }
}


def _by_title(panels: list[Panel]) -> dict[str, Panel]:
    return {p.title.split(" (")[0]: p for p in panels}


def test_the_bench_rows_become_req_s_and_req_s_per_core_per_scenario() -> None:
    panels = _by_title(chart_data(BENCH))
    rps = panels["Authorization server: req/s"]
    assert rps.scenarios == ("cc-tls", "introspect-opaque", "revoke")
    assert [s.server for s in rps.series] == ["certbound w1", "oidc-provider 9.13.3"]
    assert rps.series[0].values == (5000, 6000, 900)
    assert rps.series[1].values == (2500, None, 2000)  # no peer side: no bar, not a zero
    assert "python -m bench.run --steady" in rps.title
    per_core = panels["Authorization server: req/s per core of server CPU"]
    # revoke has no server CPU on either side: left out of that panel
    assert per_core.scenarios == ("cc-tls", "introspect-opaque")
    assert per_core.series[0].values == (10_000, 8_000)  # 10^6 / µs per request
    assert per_core.series[1].values == (2_500, None)


def test_an_ab_run_names_the_baseline_and_a_file_without_cpu_has_no_per_core_panel() -> None:
    row = {"scenario": "cc-tls", "certbound": _side(5000, None), "peer": _side(4000, None)}
    servers = {"certbound": "certbound w1", "baseline": "certbound w1 from /tmp/before"}
    ab = {"servers": servers, "rows": [row]}
    panels = chart_data(ab)
    assert len(panels) == 1
    assert [s.server for s in panels[0].series] == ["certbound w1", "certbound w1 from /tmp/before"]


def test_what_is_missing_or_malformed_is_skipped() -> None:
    odd = {"rows": [{"scenario": "cc-tls", "certbound": {"rps": "fast"}, "peer": {"rps": math.inf}},
                    {"certbound": _side(1, 1)}, "not a row",
                    {"scenario": "introspect", "certbound": {"rps": 3000}}]}  # fmt: skip
    panels = chart_data(odd)
    assert len(panels) == 1
    assert panels[0].scenarios == ("introspect",)
    assert [(s.server, s.values) for s in panels[0].series] == [("certbound", (3000,))]
    assert chart_data({}) == []
    assert chart_data(None, {"command": "x"}) == []


def test_the_gateway_file_is_read_in_either_shape() -> None:
    records = [
        {"scenario": "jwt-strict", "server": "certbound gateway", "rps": 9000, "rps_per_core": 9500},
        {"scenario": "jwt-strict", "server": "mod_oauth2", "rps": 11000, "rps_per_core": 11000},
        {"scenario": "jwt-strict", "server": "mod_auth_openidc", "rps": 4200},
        {"scenario": "new-connection", "server": "certbound gateway", "rps": 600, "server_cpu": 0.5},
        {"server": "no scenario", "rps": 1},
    ]
    from_list = chart_data(None, {"rows": records})
    from_nested = chart_data(None, GATEWAY_NESTED)
    assert from_list == from_nested
    panels = _by_title(from_nested)
    rps = panels["Gateway as a resource server: req/s"]
    assert rps.scenarios == ("jwt-strict", "new-connection")
    assert [(s.server, s.values) for s in rps.series] == [
        ("certbound gateway", (9000, 600)), ("mod_oauth2", (11000, None)), ("mod_auth_openidc", (4200, None)),
    ]  # fmt: skip
    per_core = panels["Gateway as a resource server: req/s per core"]
    # rps_per_core where given, else rps over the server's CPU; mod_auth_openidc has neither
    assert [(s.server, s.values) for s in per_core.series] == [
        ("certbound gateway", (9500, 1200)), ("mod_oauth2", (11000, None)),
    ]  # fmt: skip
    assert len(list(gateway_records(records))) == 4


def test_results_are_read_from_the_directory_and_a_missing_gateway_file_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text(json.dumps(BENCH))
    bench, gateway = load_results(tmp_path)
    assert bench == BENCH
    assert gateway is None
    assert len(chart_data(bench, gateway)) == 2
    (tmp_path / "gateway.json").write_text(json.dumps(GATEWAY_NESTED))
    assert len(chart_data(*load_results(tmp_path))) == 4
    (tmp_path / "gateway.json").write_text("{not json")
    with pytest.raises(SystemExit, match="not JSON"):
        load_results(tmp_path)


def test_nothing_to_chart_exits_1_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    assert main(["--results", str(tmp_path), "--out", str(out)]) == 1
    assert not out.exists()


def test_the_chart_is_a_png_with_the_bars_of_the_data(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.chart import draw

    (tmp_path / "latest.json").write_text(json.dumps(BENCH))
    (tmp_path / "gateway.json").write_text(json.dumps(GATEWAY_NESTED))
    out = tmp_path / "docs" / "chart.png"
    assert main(["--results", str(tmp_path), "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 500
    assert height > 4 * 300  # four panels

    panels = chart_data(BENCH, GATEWAY_NESTED)
    figure = draw(panels)
    for ax, panel in zip(figure.axes, panels, strict=True):
        drawn = [bar.get_height() for bar in ax.patches]
        wanted = [v for s in panel.series for v in s.values]
        assert len(drawn) == len(wanted)
        for got, value in zip(drawn, wanted, strict=True):
            assert math.isnan(got) if value is None else got == value
        assert [t.get_text() for t in ax.get_xticklabels()] == list(panel.scenarios)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [s.server for s in panel.series]


def test_the_gateway_runs_own_file_is_read_without_its_upstream_reference() -> None:
    """What `bench.gateway_run` writes: ``scenarios.<name>.servers.<server>``, beside a list of every
    run (which must not be taken for the figures), the direct upstream (plain and over TLS) as
    references to leave out."""
    data = {
        "command": "python -m bench.gateway_run " + "--x " * 40,
        "runs": [{"scenario": "jwt", "server": "certbound", "rps": 1.0}],
        "scenarios": {
            "jwt": {"label": "bound JWT", "verdicts": [], "servers": {
                "upstream": {"rps": 27000.0, "rps_per_core": 65000.0},
                "upstream-tls": {"rps": 9000.0, "rps_per_core": 20000.0},
                "certbound": {"rps": 5100.0, "rps_per_core": 5144.0},
                "mod_oauth2": {"rps": 1987.0, "rps_per_core": 2000.0},
            }},
        },
    }  # fmt: skip
    panels = chart_data(None, data)
    rps = next(p for p in panels if p.ylabel == "req/s")
    assert [(s.server, s.values) for s in rps.series] == [("certbound", (5100.0,)), ("mod_oauth2", (1987.0,))]
    assert rps.title.endswith("…)")
    assert len(rps.title) < 160
    # the same figures as a list of records: the references are left out there too
    records = [{"scenario": "jwt", "server": server, **figures}
               for server, figures in data["scenarios"]["jwt"]["servers"].items()]  # fmt: skip
    assert [server for _, server, _ in gateway_records(records)] == ["certbound", "mod_oauth2"]
    assert chart_data(None, {"rows": records}) == chart_data(None, {**data, "command": None})
