"""The Docker API's shared request-value decoding: string lists and since/until times."""

from __future__ import annotations

import pytest

from ctrd.errdefs import InvalidArgument
from daemon.dockerapi.params import strs, time_param


def test_strs_takes_a_string_a_list_or_nothing() -> None:
    assert strs(None, "Cmd") == []
    assert strs("sh", "Cmd") == ["sh"]
    assert strs(["sh", "-c"], "Cmd") == ["sh", "-c"]
    with pytest.raises(InvalidArgument, match=r"^Config.Env: want a list of strings$"):
        strs(["A=1", 2], "Config.Env")


@pytest.mark.parametrize(("value", "want"), [
    ("", 0.0), ("0", 0.0), ("1700000000.5", 1700000000.5),
    ("2023-11-14T22:13:20Z", 1700000000.0), ("10m", 1000.0 - 600), ("1.5s", 998.5),
])
def test_time_param_reads_docker_forms(value: str, want: float) -> None:
    assert time_param(value, 1000.0, "since") == pytest.approx(want)


def test_a_bad_time_names_its_parameter() -> None:
    with pytest.raises(InvalidArgument, match=r"^until: invalid time 'yesterday'$"):
        time_param("yesterday", 1000.0, "until")


def test_a_missing_backend_service_is_a_501_naming_it() -> None:
    from daemon.dockerapi.errors import HTTPError, available, status_of

    assert available("store", "images") == "store"
    with pytest.raises(HTTPError, match=r"^registries are not available$") as err:
        available(None, "registries")
    assert status_of(err.value) == 501
