"""`Value`: typing.NamedTuple's kind of record (a tuple with named fields, defaults, `_replace`,
`_asdict`, `_fields`) built from the class's annotations, without `typing` at run time.

Why: `ctrd-runtime create` (one process per container from containerd and dockerd) parses
config.json into ~20 record classes. As `typing.NamedTuple`s they cost `import typing` (which
brings re, contextlib, collections; `python3 -S -c 'import socket,signal,typing'` 23.6 ms against
17.8 ms without typing, hyperfine, 2026-12-06, the modules create needs anyway) plus ~0.3 ms per
class for namedtuple's code generation. Here a class costs one `__init_subclass__` pass.

Fields are the annotated class attributes in order (inherited ones first), a class attribute's
value is its default, `ClassVar` annotations are not fields. Instances are tuples of the values,
so equality, hashing, unpacking and immutability are a tuple's, as with NamedTuple. The type
checker sees a frozen dataclass-like class (PEP 681's dataclass_transform), so every construction
is checked against the fields.
"""

from __future__ import annotations

from operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self, dataclass_transform
else:
    def dataclass_transform(**_options: object) -> object:
        return lambda cls: cls


@dataclass_transform(frozen_default=True)
class Value(tuple):  # type: ignore[type-arg]  # a tuple of the fields' values, like a NamedTuple
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        notes = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - not inspect: ~8 ms of imports
        own = [name for name, note in notes.items() if not str(note).startswith(("ClassVar", "typing.ClassVar"))]
        defaults = dict(cls._field_defaults)
        for name in own:
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
            elif defaults:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with a default")
        cls._fields = (*cls._fields, *own)
        cls._field_defaults = defaults
        for i, name in enumerate(cls._fields):
            setattr(cls, name, property(itemgetter(i), doc=f"field {i}: {name}"))

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} positional arguments but {len(args)} were given")
        if not kwargs and len(args) == len(fields):
            return tuple.__new__(cls, args)
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in cls._field_defaults:
                values.append(cls._field_defaults[name])
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        if kwargs:
            name = next(iter(kwargs))
            if name in fields:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
        return tuple.__new__(cls, values)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def __getnewargs__(self) -> tuple[Any, ...]:  # copy and pickle rebuild it from its values
        return tuple(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in zip(self._fields, self, strict=True))})"
