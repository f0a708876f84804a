"""`python -m offline.evaluate`'s counts are refused, not half-run, when they are not a whole
number of at least 1."""

import pytest

from offline import evaluate


@pytest.mark.parametrize(
    "command", ["judge", "diffusion", "autoregressive", "tokens", "neighbours"]
)
@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many", ""])
def test_a_count_that_is_not_a_whole_number_of_at_least_one_is_refused(command, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([command, "--n", value])
    assert exit_.value.code == 2
    assert f"{value!r} is not a whole number of at least 1" in capsys.readouterr().err


def test_the_pool_of_neighbour_counts_too(capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["neighbours", "--pool", "0"])
    assert "'0' is not a whole number of at least 1" in capsys.readouterr().err
