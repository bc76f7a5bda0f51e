"""How fast hypothesis examples go through ``TapHost.receive`` (the README's fuzzing figures).

Two figures:
- *examples per second*: a hypothesis test that draws ``broken(echo_requests(...))`` (or a
  valid request, half the time), builds a fresh host and feeds it the frame -- what a fuzz run
  of the property suite gets, generation and shrinking machinery included;
- *frames per second*: the same kind of frames drawn once beforehand and fed to one host in a
  loop -- the stack's own share.

    python bench/fuzz_rate.py [--examples N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stack import TapHost  # noqa: E402
from stack.testing.strategies import broken, echo_requests  # noqa: E402

HOST_IP, HOST_MAC, PEER_IP, PEER_MAC = "192.0.2.2", "02:00:00:00:00:02", "192.0.2.1", "02:00:00:00:00:01"
REQUESTS = echo_requests(source=PEER_IP, destination=HOST_IP, source_mac=PEER_MAC, destination_mac=HOST_MAC)
FRAMES = st.one_of(REQUESTS, broken(REQUESTS).map(lambda case: case.frame))


def host() -> TapHost:
    return TapHost([f"{HOST_IP}/24"], mac=HOST_MAC)


def examples_per_second(count: int) -> float:
    ran = 0

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(frame=FRAMES)
    def run(frame: bytes) -> None:
        nonlocal ran
        ran += 1
        host().receive(frame, 1.0)

    start = time.perf_counter()
    run()
    return ran / (time.perf_counter() - start)


def frames_per_second(count: int) -> float:
    frames: list[bytes] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(frame=FRAMES)
    def collect(frame: bytes) -> None:
        frames.append(frame)

    collect()
    target = host()
    start = time.perf_counter()
    for _ in range(10):
        for frame in frames:
            target.receive(frame, 1.0)
    return 10 * len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    result = {"examples_per_second": round(examples_per_second(arguments.examples)),
              "frames_per_second": round(frames_per_second(arguments.examples)),
              "examples": arguments.examples, "python": sys.version.split()[0]}
    print(f"hypothesis examples through a fresh TapHost: {result['examples_per_second']:,}/s")
    print(f"the same kind of frames through one TapHost: {result['frames_per_second']:,}/s")
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
