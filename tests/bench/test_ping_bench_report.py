"""bench/ping_bench.py's arithmetic and report, on synthetic figures (no device, no root): medians
and min-max spreads over rounds, ratios of medians with the rounds' own ratios as spread, NaN
(a round that measured nothing) never taken for a figure, PASS/FAIL against each target, the
exit status, and the JSON."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_ping_bench():
    """bench/ is not a package: load the script by its path (once, registered for dataclasses)."""
    if "ping_bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ping_bench", REPO / "bench" / "ping_bench.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["ping_bench"] = module
        spec.loader.exec_module(module)
    return sys.modules["ping_bench"]


pb = load_ping_bench()
nan = math.nan


def rounds(**figures: list[float]) -> list:
    """Rounds whose figures are given as lists, one value per round."""
    count = len(next(iter(figures.values())))
    return [pb.Round(**{name: values[index] for name, values in figures.items()}) for index in range(count)]


# ---------------------------------------------------------------------- spread and ratio


def test_spread_is_the_median_and_the_min_max_of_the_rounds() -> None:
    assert pb.spread([30.0, 10.0, 20.0, 50.0, 40.0]) == pb.Spread(30.0, 10.0, 50.0, 5, 5)
    assert pb.spread([4.0, 1.0, 2.0, 3.0]).median == 2.5  # even count: the mean of the middle two


def test_a_round_that_measured_nothing_is_left_out_and_counted() -> None:
    found = pb.spread([10.0, nan, 30.0])
    assert (found.median, found.low, found.high, found.measured, found.rounds) == (20.0, 10.0, 30.0, 2, 3)
    assert not found.complete
    nothing = pb.spread([nan, nan])
    assert math.isnan(nothing.median) and nothing.measured == 0 and not nothing.complete


def test_a_ratio_is_of_the_medians_and_its_spread_is_of_the_rounds_side_by_side() -> None:
    # Medians 20 and 10: ratio 2.0, though the rounds' own ratios are 10, 2 and 1/3 (median 2 too,
    # but their min-max, 1/3 to 10, is the spread).
    found = pb.ratio([10.0, 20.0, 30.0], [1.0, 10.0, 90.0])
    assert found.value == pytest.approx(2.0)
    assert found.per_round == pytest.approx([10.0, 2.0, 1 / 3])
    assert (found.low, found.high) == (pytest.approx(1 / 3), pytest.approx(10.0))
    assert found.complete


def test_a_ratio_with_a_missing_round_or_a_zero_is_incomplete_not_a_crash() -> None:
    found = pb.ratio([10.0, nan, 30.0], [5.0, 5.0, 10.0])
    assert found.value == pytest.approx(20.0 / 5.0) and not found.complete
    assert math.isnan(found.per_round[1]) and (found.low, found.high) == (2.0, 3.0)
    zero = pb.ratio([1.0], [0.0])
    assert math.isnan(zero.value) and not zero.complete
    with pytest.raises(ValueError):
        pb.ratio([1.0, 2.0], [1.0])


@pytest.mark.parametrize(("bound", "limit", "figures", "reference", "expected"), [
    ("<=", 1.2, [12.0], [10.0], True),  # exactly at the limit
    ("<=", 1.2, [12.1], [10.0], False),
    (">=", 0.8, [8.0], [10.0], True),
    (">=", 0.8, [7.9], [10.0], False),
    ("<=", 1.2, [nan], [10.0], False),  # nothing measured: never a pass
    (">=", 0.8, [10.0], [nan], False),
    ("<=", 1.2, [10.0, nan, 10.0], [10.0, 10.0, 10.0], False),  # a round missing: not met
    ("<=", None, [99.0], [1.0], None),  # no target: shown only
], ids=["at-limit", "over", "capacity-at-limit", "capacity-under", "nan-figure", "nan-reference",
        "incomplete", "no-target"])
def test_pass_or_fail_against_a_target(bound, limit, figures, reference, expected) -> None:
    target = pb.Target("tapstack", "yardstick-tap", "median_rtt_us", bound, limit)
    assert target.met(pb.ratio(figures, reference)) is expected


def test_issue_12_targets_are_all_there() -> None:
    by_key = {(t.responder, t.versus, t.figure): (t.bound, t.limit) for t in pb.TARGETS}
    for name, yardstick in (("tapstack", "yardstick-tap"), ("tapstack-tun", "yardstick-tun")):
        assert by_key[(name, yardstick, "median_rtt_us")] == ("<=", 1.2)
        assert by_key[(name, yardstick, "answers_per_s")] == (">=", 0.8)
        assert by_key[(name, yardstick, "cpu_us_per_answer")] == ("<=", 1.25)
        assert by_key[(name, "kernel", "median_rtt_us")] == ("<=", 5.0)
        assert by_key[(name, "kernel", "answers_per_s")] == (">=", 0.3)
    assert by_key[("tapstack-busy-poll", "kernel", "median_rtt_us")] == ("<=", 2.5)
    assert pb.IN_PROCESS_TARGETS == {"another MAC": 1.5, "unknown EtherType": 1.5, "bad IPv4 header checksum": 4.0,
                                     "ARP request, known sender": 8.0, "ARP request, new sender": 8.0}


# ---------------------------------------------------------------------- checks and report


def synthetic() -> dict:
    """Three rounds, two modes: tapstack meets its yardstick targets not pinned, misses them pinned."""
    return {
        "kernel": {"unpinned": rounds(median_rtt_us=[8.0, 7.0, 9.0], answers_per_s=[60e3, 62e3, 58e3]),
                   "pinned": rounds(median_rtt_us=[5.0, 5.0, 6.0], answers_per_s=[80e3, 81e3, 79e3])},
        "yardstick-tap": {
            "unpinned": rounds(median_rtt_us=[60.0, 50.0, 70.0], answers_per_s=[40e3, 45e3, 50e3],
                               cpu_us_per_answer=[16.0, 15.0, 17.0], p99_rtt_us=[200.0, 190.0, 210.0]),
            "pinned": rounds(median_rtt_us=[16.0, 15.0, 17.0], answers_per_s=[47e3, 48e3, 46e3],
                             cpu_us_per_answer=[10.0, 11.0, 10.5], p99_rtt_us=[40.0, 41.0, 39.0])},
        "tapstack": {
            "unpinned": rounds(median_rtt_us=[66.0, 55.0, 70.0], answers_per_s=[36e3, 40e3, 41e3],
                               cpu_us_per_answer=[18.0, 17.0, 19.0], p99_rtt_us=[230.0, 250.0, nan]),
            "pinned": rounds(median_rtt_us=[58.0, 55.0, 60.0], answers_per_s=[13e3, 14e3, 13.5e3],
                             cpu_us_per_answer=[44.0, 45.0, 43.0], p99_rtt_us=[120.0, 130.0, 125.0])},
    }


def test_checks_are_per_mode_and_only_for_responders_measured() -> None:
    found = pb.checks(synthetic(), ["unpinned", "pinned"])
    assert {c.target.responder for c in found} == {"tapstack"}  # no TUN, no busy-poll measured
    verdicts = {(c.mode, c.target.versus, c.target.figure): c.passed for c in found}
    assert verdicts == {
        ("unpinned", "yardstick-tap", "median_rtt_us"): True,  # 66 / 60 = 1.1
        ("unpinned", "yardstick-tap", "answers_per_s"): True,  # 40 / 45 = 0.89
        ("unpinned", "yardstick-tap", "cpu_us_per_answer"): True,  # 18 / 16 = 1.125
        ("unpinned", "kernel", "median_rtt_us"): False,  # 66 / 8 = 8.25
        ("unpinned", "kernel", "answers_per_s"): True,  # 40 / 60 = 0.67
        ("pinned", "yardstick-tap", "median_rtt_us"): False,  # 58 / 16
        ("pinned", "yardstick-tap", "answers_per_s"): False,
        ("pinned", "yardstick-tap", "cpu_us_per_answer"): False,
        ("pinned", "kernel", "median_rtt_us"): False,
        ("pinned", "kernel", "answers_per_s"): False,  # 13.5 / 80
    }
    rtt = next(c for c in found if (c.mode, c.target.versus, c.target.figure) == ("unpinned", "yardstick-tap",
                                                                                     "median_rtt_us"))
    assert rtt.ratio.value == pytest.approx(66 / 60)
    assert (rtt.ratio.low, rtt.ratio.high) == (pytest.approx(1.0), pytest.approx(1.1))  # 66/60, 55/50, 70/70
    assert rtt.ratio.per_round == pytest.approx([1.1, 1.1, 1.0])


def modes() -> list:
    return [pb.make_mode("unpinned", 1, {0, 1}), pb.make_mode("pinned", 1, {0, 1})]


def test_the_report_has_one_table_per_mode_with_medians_spreads_and_verdicts() -> None:
    results = synthetic()
    found = pb.checks(results, ["unpinned", "pinned"])
    costs = {"echo_cost.py": {"TapHost.receive": [9.0, 10.0, 11.0]},
             "drop_cost.py": {"another MAC": [1.0, 1.2, 1.1], "bad IPv4 header checksum": [5.0, 6.0, 4.5]}}
    cost_found = pb.cost_checks(costs)
    text = "\n".join(pb.report(modes(), results, found, costs, cost_found, check=True, rounds=3))
    assert text.count("== not pinned") == 1 and text.count("== pinned: ping and the responder on CPU 1") == 1
    unpinned, pinned = text.split("== pinned")[0], text.split("== pinned")[1].split("== in process")[0]
    yardstick_row = next(line for line in unpinned.splitlines() if line.startswith("yardstick-tap"))
    assert "60 us (50-70)" in yardstick_row and "45,000 (40,000-50,000)" in yardstick_row
    tapstack_row = next(line for line in unpinned.splitlines() if line.startswith("tapstack "))
    assert "240 us (230-250) [2/3 rounds]" in tapstack_row  # the p99 of a round that had none
    kernel_row = next(line for line in pinned.splitlines() if line.startswith("kernel"))
    assert "(softirq)" in kernel_row
    assert any("tapstack / yardstick-tap" in line and "1.10x (1.00-1.10)" in line and line.endswith("PASS")
               for line in unpinned.splitlines())
    assert any("tapstack / yardstick-tap" in line and "median RTT" in line and line.endswith("FAIL")
               for line in pinned.splitlines())
    in_process = text.split("== in process")[1]
    assert any("another MAC" in line and "1.10 us (1.00-1.20)" in line and line.endswith("PASS")
               for line in in_process.splitlines())
    assert any("bad IPv4 header checksum" in line and line.endswith("FAIL") for line in in_process.splitlines())
    assert "unknown EtherType: not reported by drop_cost.py" in in_process  # a missing kind fails
    met = sum(c.passed for c in found) + sum(c.passed for c in cost_found)
    assert text.endswith(f"{met} of {len(found) + len(cost_found)} targets met")

    unchecked = "\n".join(pb.report(modes(), results, found, costs, cost_found, check=False, rounds=3))
    assert "PASS" not in unchecked and "FAIL" not in unchecked and "(not checked)" in unchecked


ECHOES = {"TapHost.receive": [9.0, 10.0, 9.5], "TunHost.receive": [6.0, 6.5, 6.0],
          "TapHost.receive IPv6": [10.0, 11.0, 10.5], "TunHost.receive IPv6": [6.5, 7.0, 6.5]}


def test_in_process_targets_fail_when_a_kind_is_missing_from_a_round() -> None:
    costs = {"drop_cost.py": {kind: [limit / 2] * 3 for kind, limit in pb.IN_PROCESS_TARGETS.items()},
             "echo_cost.py": {kind: list(values) for kind, values in ECHOES.items()}}
    assert all(c.passed for c in pb.cost_checks(costs))
    costs["drop_cost.py"]["another MAC"][1] = nan
    assert [c.kind for c in pb.cost_checks(costs) if not c.passed] == ["another MAC"]


def test_the_ipv6_echo_is_held_to_1_2x_the_ipv4_echo_round_by_round() -> None:
    costs = {"echo_cost.py": {kind: list(values) for kind, values in ECHOES.items()}}
    ratios = {c.kind: c for c in pb.cost_checks(costs) if c.kind.endswith("(ratio)")}
    assert ratios["TapHost.receive IPv6 / IPv4 (ratio)"].passed
    assert ratios["TapHost.receive IPv6 / IPv4 (ratio)"].cost.median == pytest.approx(10.5 / 9.5)
    costs["echo_cost.py"]["TunHost.receive IPv6"] = [8.0, 8.0, 8.0]  # 1.23-1.33x
    assert not {c.kind: c for c in pb.cost_checks(costs)}["TunHost.receive IPv6 / IPv4 (ratio)"].passed
    del costs["echo_cost.py"]["TapHost.receive IPv6"]  # not measured: not met
    assert not {c.kind: c for c in pb.cost_checks(costs)}["TapHost.receive IPv6 / IPv4 (ratio)"].passed


def test_the_cost_lines_of_the_in_process_scripts_are_read() -> None:
    output = ("TapHost.receive:  17.60 us per echo\nTunHost.receive:  12.45 us per echo\n"
              "another MAC                        3.58 us per frame  (ethernet_not_for_us)\n"
              "ARP request, new sender, limited   5.13 us per frame  (arp_new_sender_rate_limited)\n"
              "   function calls, not a figure: 3.0 us per nothing\n")
    assert pb.parse_costs(output) == {"TapHost.receive": 17.60, "TunHost.receive": 12.45, "another MAC": 3.58,
                                      "ARP request, new sender, limited": 5.13}


@pytest.mark.parametrize("script", ["echo_cost.py", "drop_cost.py"])
def test_the_in_process_scripts_print_what_the_report_reads(script: str) -> None:
    costs = pb.run_in_process(script, 200)
    expected = {"TapHost.receive", "TunHost.receive"} if script == "echo_cost.py" else set(pb.IN_PROCESS_TARGETS)
    assert expected <= set(costs) and all(value > 0 for value in costs.values())


def test_the_schedule_visits_every_pair_each_round_odd_rounds_reversed() -> None:
    order = [(index, mode.name, name) for index, mode, name in pb.schedule(3, modes(), ["a", "b"])]
    forward = [("unpinned", "a"), ("unpinned", "b"), ("pinned", "a"), ("pinned", "b")]
    assert order == ([(0, *pair) for pair in forward] + [(1, *pair) for pair in reversed(forward)]
                     + [(2, *pair) for pair in forward])


# ---------------------------------------------------------------------- main: arguments, exit status, JSON


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() runs on the synthetic figures, as root with every tool, without touching signals."""
    results = synthetic()
    costs = {"echo_cost.py": {kind: list(values) for kind, values in ECHOES.items()},
             "drop_cost.py": {kind: [limit / 2] * 3 for kind, limit in pb.IN_PROCESS_TARGETS.items()}}
    costs["echo_cost.py"]["TapHost.receive"] = [9.0, 10.0, 11.0]
    monkeypatch.setattr(pb, "cannot_run", lambda modes: None)
    monkeypatch.setattr(pb.signal, "signal", lambda *args: None)
    monkeypatch.setattr(pb, "measure_all", lambda chosen, modes, rounds, counts: (
        {r.name: {mode.name: results[r.name][mode.name] for mode in modes} for r in chosen if r.name in results},
        costs))


def test_exit_status_is_1_when_a_target_is_missed_and_0_with_no_check(measured, capsys) -> None:
    assert pb.main(["--rounds", "3", "--cpu", "0"]) == 1
    assert pb.main(["--rounds", "3", "--cpu", "0", "--no-check"]) == 0
    assert pb.main(["--rounds", "3", "--modes", "unpinned", "--only", "tapstack,yardstick-tap"]) == 0  # all met
    assert "== pinned" not in capsys.readouterr().out.split("== not pinned")[-1]


def test_the_json_keeps_every_round_the_environment_and_the_method(measured, tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    assert pb.main(["--rounds", "3", "--cpu", "0", "--no-check", "--json", str(path)]) == 0
    document = json.loads(path.read_text())  # strict JSON: NaN written as null
    environment = document["environment"]
    assert {"kernel", "python", "cpus", "cpu_model", "load_average_start", "load_average_end"} <= set(environment)
    assert len(environment["load_average_start"]) == 3
    assert set(document["method"]["modes"]) == {"unpinned", "pinned"}
    assert document["method"]["modes"]["pinned"]["cpus"] == [0]
    p99 = document["responders"]["tapstack"]["modes"]["unpinned"]["figures"]["p99_rtt_us"]
    assert p99 == {"median": 240.0, "low": 230.0, "high": 250.0, "measured": 2, "rounds": [230.0, 250.0, None]}
    assert len(document["responders"]["kernel"]["modes"]["pinned"]["rounds"]) == 3
    rtt = next(r for r in document["ratios"] if (r["mode"], r["versus"], r["figure"]) ==
               ("unpinned", "yardstick-tap", "median_rtt_us"))
    assert rtt["ratio"] == pytest.approx(1.1) and rtt["target"] == "<= 1.2" and rtt["passed"] is True
    assert document["in_process"]["echo_cost.py"]["TapHost.receive"]["median"] == 10.0
    assert document["all_targets_met"] is False


@pytest.mark.parametrize("argv", [["--modes", "pinned,sometimes"], ["--modes", ""], ["--rounds", "0"],
                                  ["--only", "tapstack,nosuch"], ["--cpu", "4096"],
                                  ["--json", "/nonexistent/dir/f.json"]],
                         ids=["mode", "no-mode", "rounds", "only", "cpu", "json-dir"])
def test_bad_arguments_are_one_error_line_and_exit_status_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        pb.main(argv)
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and error.splitlines()[-1].startswith("ping_bench.py: error:")


def test_without_root_it_says_so_and_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(pb.os, "geteuid", lambda: 1000)
    assert pb.main(["--quick"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "ping_bench: needs root (it creates network namespaces and TAP/TUN devices); run it with sudo"]
