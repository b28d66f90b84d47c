"""The parent's restart policy: every dead worker is replaced; young deaths in a row wait longer and
longer (capped), say plainly that the worker keeps crashing, and a worker that lived long enough
clears the streak."""

from __future__ import annotations

import pytest

from certbound.tls.restarts import RestartPolicy


def test_an_old_worker_is_replaced_at_once() -> None:
    slot = RestartPolicy().slot()
    delay, line = slot.died(3600.0, 42, -9)
    assert delay == 0
    assert "worker 42 exited (code -9)" in line
    assert slot.young_deaths == 0


def test_young_deaths_in_a_row_back_off_up_to_the_cap() -> None:
    policy = RestartPolicy(young_s=10, base_s=0.5, max_s=4, crashing_after=3)
    slot = policy.slot()
    delays, lines = [], []
    for _ in range(7):
        delay, line = slot.died(1.0, 7, 3)
        delays.append(delay)
        lines.append(line)
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert ["keeps crashing" in line for line in lines] == [False, False, True, True, True, True, True]
    assert "3 times in a row" in lines[2]


def test_a_worker_that_lived_clears_the_streak() -> None:
    slot = RestartPolicy(young_s=10).slot()
    slot.died(1.0, 1, 1)
    slot.died(1.0, 2, 1)
    slot.alive(9.9)
    assert slot.young_deaths == 2
    slot.alive(10.0)
    assert slot.young_deaths == 0
    assert slot.died(1.0, 3, 1)[0] == 0.0


@pytest.mark.parametrize("bad", [{"young_s": 0}, {"base_s": 5, "max_s": 1}, {"crashing_after": 0}])
def test_nonsense_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="young_s"):
        RestartPolicy(**bad)  # type: ignore[arg-type]
