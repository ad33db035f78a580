"""When a drill judges service back, and what it holds against the clients afterwards
(the probes' samples are built here; the lab runs the same code in tests/lab)."""

from __future__ import annotations

import time
from collections.abc import Callable

from hakit.lab.drill.observe import Probe, Watch
from hakit.lab.drill.runner import Judge, _answering_since, _judge_aftermath


def probe(*samples: tuple[float, bool]) -> Probe:
    return Probe("cinder volume create/delete", lambda: True, 1.0, list(samples))


def test_service_is_back_from_the_first_answer_after_the_last_failure() -> None:
    relapsed = probe((100.0, True), (101.0, False), (104.0, True), (105.0, True))
    assert _answering_since(relapsed, fault_at=100.5) == 104.0


def test_a_probe_failing_now_or_not_yet_answering_is_not_back() -> None:
    assert _answering_since(probe((101.0, True), (102.0, False)), fault_at=100.0) > 1e300
    assert _answering_since(probe((99.0, True)), fault_at=100.0) > 1e300


def test_a_request_in_flight_when_service_was_judged_back_counts_against_it() -> None:
    """The failure began before the judgement (failures are stamped when the request
    was sent) but was recorded after it: it is a late failure all the same."""
    late = probe((104.0, True), (105.0, True))
    judged_from = [len(late.samples)]
    late.samples.append((105.5, False))  # sent at 105.5, failed after the judgement at 106
    judge = Judge()
    _judge_aftermath(judge, [late], judged_from, back_at=106.0)
    assert [v["invariant"] for v in judge.violations] == ["no-failure-during-outage"]
    assert "failed again" in judge.violations[0]["detail"]


def test_answers_after_the_judgement_are_no_violation() -> None:
    steady = probe((104.0, True))
    judged_from = [1]
    steady.samples += [(107.0, True), (108.0, True)]
    judge = Judge()
    _judge_aftermath(judge, [steady], judged_from, back_at=106.0)
    assert judge.violations == []


class Here:
    """The client's vantage point: this process."""

    def in_client(self, run: Callable[[], None]) -> None:
        run()


def test_a_check_served_after_the_probes_patience_was_an_outage() -> None:
    """A round trip in flight through a whole outage ends with a success; the client
    waited through it, so it counts as down from the request to the answer."""

    def slow() -> bool:
        time.sleep(0.3)
        return True

    patient = Probe("slow", slow, 10.0, patience=0.1)
    with Watch(Here(), [patient], []):  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while len(patient.samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    (began, down), (served, up) = patient.samples[:2]
    assert (down, up) == (False, True) and served - began >= 0.3
    assert patient.downtime(began - 1.0)[0] >= 0.3
    quick = Probe("quick", lambda: True, 10.0, patience=1.0)
    with Watch(Here(), [quick], []):  # type: ignore[arg-type]
        while not quick.samples:
            time.sleep(0.02)
    assert [ok for _, ok in quick.samples] == [True]
