"""runtime.value.Value behaves as the typing.NamedTuple it replaces (runtime/value.py says why)."""

from __future__ import annotations

import copy
import pickle
from typing import ClassVar, NamedTuple

import pytest

from runtime.value import Value


class Mine(Value):
    """a record"""

    LIMIT: ClassVar[int] = 3  # not a field
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.name}:{self.size}"


class Theirs(NamedTuple):
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()


def test_fields_defaults_and_access_as_a_named_tuple() -> None:
    assert Mine._fields == Theirs._fields == ("name", "size", "tags")
    assert Mine._field_defaults == Theirs._field_defaults
    m, t = Mine("a", tags=("x",)), Theirs("a", tags=("x",))
    assert tuple(m) == tuple(t) and m._asdict() == t._asdict()
    assert (m.name, m.size, m.tags, m[1]) == ("a", 0, ("x",), 0)
    name, size, tags = m
    assert (name, size, tags) == ("a", 0, ("x",))
    assert m.describe() == "a:0" and Mine.LIMIT == 3
    assert repr(m) == "Mine(name='a', size=0, tags=('x',))"


def test_equality_hash_and_replace() -> None:
    m = Mine("a", 1)
    assert m == Mine(name="a", size=1) and hash(m) == hash(Mine("a", 1)) and m != Mine("a", 2)
    r = m._replace(size=5)
    assert type(r) is Mine and r == Mine("a", 5) and m.size == 1
    assert {m: 1}[Mine("a", 1)] == 1


def test_it_is_frozen() -> None:
    m = Mine("a")
    with pytest.raises(AttributeError):
        m.name = "b"  # type: ignore[misc]


def test_copy_and_pickle_rebuild_the_same_value() -> None:
    m = Mine("a", 2, ("t",))
    assert copy.copy(m) == m and copy.deepcopy(m) == m and type(copy.deepcopy(m)) is Mine
    assert pickle.loads(pickle.dumps(m)) == m


@pytest.mark.parametrize(("args", "kwargs", "words"), [
    ((), {}, "missing required argument: 'name'"),
    (("a", 1, (), 4), {}, "takes 3 positional arguments but 4 were given"),
    (("a",), {"name": "b"}, "got multiple values for argument 'name'"),
    (("a",), {"colour": 1}, "got an unexpected keyword argument 'colour'"),
])
def test_bad_construction_is_a_type_error_naming_the_field(args: tuple[object, ...], kwargs: dict[str, object],
                                                           words: str) -> None:
    with pytest.raises(TypeError, match=words):
        Mine(*args, **kwargs)  # type: ignore[arg-type]


def test_a_field_without_default_after_one_with_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="field 'b' without a default follows one with a default"):
        class Bad(Value):
            a: int = 0
            b: int  # type: ignore[misc]  # the checker refuses it too
