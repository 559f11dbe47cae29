"""The id-map half of user namespaces: what is written to uid_map/gid_map, and lookups."""

from __future__ import annotations

import pytest

from runtime.errors import SpecError
from runtime.spec_userns import IdMap, id_maps, map_text, to_host


def test_map_text_is_one_line_per_extent() -> None:
    maps = id_maps([{"containerID": 0, "hostID": 100000, "size": 1000},
                    {"containerID": 1000, "hostID": 5000, "size": 1}], "linux.uidMappings")
    assert map_text(maps) == b"0 100000 1000\n1000 5000 1\n"


def test_to_host_maps_inside_extents_only() -> None:
    maps = (IdMap(0, 100000, 10), IdMap(20, 7, 1))
    assert to_host(maps, 0) == 100000
    assert to_host(maps, 9) == 100009
    assert to_host(maps, 10) is None
    assert to_host(maps, 20) == 7


@pytest.mark.parametrize(("value", "field"), [
    ("x", "linux.uidMappings"),
    ([{"containerID": 0, "hostID": 0}], "linux.uidMappings[0].size"),
    ([{"containerID": True, "hostID": 0, "size": 1}], "linux.uidMappings[0].containerID"),
    ([{"containerID": 4294967295, "hostID": 0, "size": 2}], "linux.uidMappings[0]"),
])
def test_bad_extents_name_their_field(value: object, field: str) -> None:
    with pytest.raises(SpecError) as err:
        id_maps(value, "linux.uidMappings")
    assert str(err.value).startswith(f"config.json: {field}: ")
