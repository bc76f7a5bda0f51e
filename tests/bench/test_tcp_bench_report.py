"""bench/tcp_bench.py's report and arithmetic on synthetic figures (no device, no root), and its
in-process half for real: tcp_cost.py's TcpLayer pair serves HTTP and echo through memory, its
lines are what the report reads, and the yardstick serves tapstack's own response bytes."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load(name: str):
    """bench/ is not a package: load a script by its path (once, registered for dataclasses)."""
    if name not in sys.modules:
        sys.path.insert(0, str(REPO / "bench"))  # tcp_bench imports ping_bench, tcp_yardstick tcp_cost
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tb = load("tcp_bench")
tcp_cost = load("tcp_cost")
nan = math.nan


def rounds(**figures: list[float]) -> list:
    count = len(next(iter(figures.values())))
    return [tb.Round(**{name: values[index] for name, values in figures.items()}) for index in range(count)]


def server(keepalive: list[float], new: list[float], echo: list[float]) -> list:
    return rounds(keepalive_per_s=keepalive, new_per_s=new, echo_mb_per_s=echo, keepalive_cpu_us=[50.0] * 3,
                  new_cpu_us=[200.0] * 3, echo_cpu_ms_per_mb=[300.0] * 3)


def synthetic() -> dict:
    return {"kernel": {"unpinned": server([10e3, 12e3, 11e3], [2e3, 2e3, 2e3], [300.0, 200.0, 250.0]),
                       "pinned": server([20e3, 20e3, 20e3], [4e3, 4e3, 4e3], [400.0, 400.0, 400.0])},
            "tapstack": {"unpinned": server([1e3, 1.5e3, 1.1e3], [200.0, 100.0, 300.0], [2.0, 2.5, 3.0]),
                         "pinned": server([2e3, 2e3, 2e3], [400.0, 400.0, 400.0], [4.0, 4.0, 4.0])}}


IN_PROCESS = {"HTTP keep-alive (requests/s)": [2300.0, 2400.0, 2200.0],
              "HTTP new connections (requests/s)": [700.0, 650.0, 720.0], "echo (MB/s)": [3.3, 3.1, 3.5]}


def modes() -> list:
    return [tb.pb.make_mode("unpinned", 1, {0, 1}), tb.pb.make_mode("pinned", 1, {0, 1})]


def test_the_ratio_is_tapstack_over_kernel_of_the_medians_with_each_rounds_ratio_as_spread() -> None:
    found = tb.ratios(synthetic(), "unpinned")
    assert set(found) == {"keepalive_per_s", "new_per_s", "echo_mb_per_s"}
    assert found["keepalive_per_s"].value == pytest.approx(1.1e3 / 11e3)
    assert found["keepalive_per_s"].per_round == pytest.approx([0.1, 0.125, 0.1])
    assert (found["new_per_s"].low, found["new_per_s"].high) == (pytest.approx(0.05), pytest.approx(0.15))
    assert found["echo_mb_per_s"].complete
    assert tb.ratios({"kernel": synthetic()["kernel"]}, "unpinned") == {}  # one server: no ratio


def test_the_report_has_a_table_per_mode_the_ratios_and_the_in_process_figures() -> None:
    text = "\n".join(tb.report(modes(), synthetic(), IN_PROCESS, [], rounds=3))
    unpinned, rest = text.split("== pinned")
    assert "== not pinned: client and server on any of CPUs 0,1" in unpinned
    row = next(line for line in unpinned.splitlines() if line.startswith("tapstack "))
    assert "1,100 (1,000-1,500)" in row and "200 (100-300)" in row and "2.50 (2.00-3.00)" in row
    assert any(line.strip().startswith("keep-alive req/s") and "0.100x (0.100-0.125)" in line
               for line in unpinned.splitlines())
    assert ": client and server on CPU 1" in rest
    assert "HTTP keep-alive (requests/s)       2,300 (2,200-2,400)" in rest
    assert "echo (MB/s)                        3.30 (3.10-3.50)" in rest
    assert "responses: the same bytes from both servers" in rest
    assert text.endswith("every figure measured in every round")


def test_a_round_that_measured_nothing_is_counted_and_noted() -> None:
    results = synthetic()
    results["tapstack"]["pinned"][1].echo_mb_per_s = nan
    results["tapstack"]["pinned"][1].notes.append("echo: tcp_client: deadline passed")
    text = "\n".join(tb.report(modes(), results, IN_PROCESS, ["http-new: differ"], rounds=3))
    assert "4.00 (4.00-4.00) [2/3 rounds]" in text
    assert "note: tapstack, round 2: echo: tcp_client: deadline passed" in text
    assert "[not measured in every round]" in text and "responses differ: http-new: differ" in text
    assert text.endswith("NOT every figure was measured in every round (see the notes)")
    assert not tb.complete(results, IN_PROCESS)


def test_responses_are_compared_with_the_date_value_aside() -> None:
    def with_response(text: str) -> dict:
        return {"unpinned": [tb.Round(first_responses={"http-keepalive": text})]}

    head = "HTTP/1.1 200 OK\r\nServer: tapstack\r\nDate: {}\r\nContent-Length: 3\r\n\r\nhi\n"
    same = {"kernel": with_response(head.format("Mon, 30 Nov 2026 12:00:00 GMT")),
            "tapstack": with_response(head.format("Mon, 30 Nov 2026 12:00:09 GMT"))}
    assert tb.compare_responses(same) == []
    other = dict(same, tapstack=with_response(head.format("x").replace("hi\n", "ho\n")))
    (difference,) = tb.compare_responses(other)
    assert difference.startswith("http-keepalive: kernel sent") and "ho\\n" in difference


def test_tcp_costs_lines_are_what_the_report_reads() -> None:
    found = tb.run_in_process(tb.QUICK)
    assert set(found) == set(IN_PROCESS) and all(rate > 0 for rate in found.values())


def test_the_in_process_pair_serves_http_and_echo_through_memory() -> None:
    first, last = tcp_cost.http_keepalive(tcp_cost.Wire(), 3)
    assert first == last and first.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" not in first
    assert len(first) == tcp_cost.response_length(first)
    (close_first, close_last) = tcp_cost.http_new_connections(tcp_cost.Wire(), 3)
    assert close_first == close_last and b"Connection: close\r\n" in close_first
    wire = tcp_cost.Wire()
    assert tcp_cost.echo(wire, 0.3) == 300_000  # checked byte for byte inside
    assert wire.segments > 2 * 300_000 // 1460


def test_the_yardstick_serves_the_bytes_of_tapstacks_http_service() -> None:
    yardstick = load("tcp_yardstick")
    keepalive, close = yardstick.responses(epoch=None)
    assert keepalive == tcp_cost.http_keepalive(tcp_cost.Wire(), 1)[0]
    assert close == keepalive.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    dated, _ = yardstick.responses(epoch=0.0)
    assert b"\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in dated


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() on the synthetic figures, as root with every tool, without touching signals."""
    monkeypatch.setattr(tb, "cannot_run", lambda modes: None)
    monkeypatch.setattr(tb.signal, "signal", lambda *args: None)
    monkeypatch.setattr(tb, "measure_all", lambda chosen, modes, rounds, counts: (
        {s.name: {mode.name: synthetic()[s.name][mode.name] for mode in modes} for s in chosen},
        {kind: list(values) for kind, values in IN_PROCESS.items()}))


def test_the_json_keeps_every_round_the_ratios_and_the_environment(measured, tmp_path: Path) -> None:
    path = tmp_path / "tcp.json"
    assert tb.main(["--rounds", "3", "--cpu", "0", "--json", str(path)]) == 0
    document = json.loads(path.read_text())
    assert {"kernel", "python", "cpus", "cpu_model", "load_average_start"} <= set(document["environment"])
    assert document["method"]["modes"]["pinned"] == {"cpus": [0], "client": "taskset -c 0"}
    figure = document["servers"]["tapstack"]["modes"]["unpinned"]["figures"]["new_per_s"]
    assert figure == {"median": 200.0, "low": 100.0, "high": 300.0, "measured": 3, "rounds": [200.0, 100.0, 300.0]}
    assert len(document["ratios"]) == 6 and document["complete"] is True
    assert document["in_process"]["echo (MB/s)"]["median"] == 3.3


def test_exit_status_1_when_a_figure_is_missing(measured, monkeypatch, capsys) -> None:
    def missing(chosen, modes, rounds, counts):
        results = synthetic()
        results["tapstack"]["unpinned"][0].keepalive_per_s = nan
        return results, dict(IN_PROCESS)

    monkeypatch.setattr(tb, "measure_all", missing)
    assert tb.main(["--rounds", "3"]) == 1
    assert "NOT every figure" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--modes", "pinned,sometimes"], ["--rounds", "0"], ["--only", "tapstack,nosuch"],
                                  ["--cpu", "4096"], ["--json", "/nonexistent/dir/f.json"]],
                         ids=["mode", "rounds", "only", "cpu", "json-dir"])
def test_bad_arguments_are_one_error_line_and_exit_status_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        tb.main(argv)
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and error.splitlines()[-1].startswith("tcp_bench.py: error:")


def test_without_root_it_says_so_and_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(tb.os, "geteuid", lambda: 1000)
    assert tb.main(["--quick"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "tcp_bench: needs root (it creates network namespaces and a TAP device); run it with sudo"]
