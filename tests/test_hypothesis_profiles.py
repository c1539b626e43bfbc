"""The property tests of the gate draw the same examples every run."""

from hypothesis import given
from hypothesis import strategies as st


def test_the_gate_draws_the_same_examples_each_time() -> None:
    drawn: list[list[int]] = [[], []]
    run = 0

    @given(st.integers())
    def record(value: int) -> None:
        drawn[run].append(value)

    record()
    run = 1
    record()
    assert drawn[0] == drawn[1]
    assert len(set(drawn[0])) > 10
