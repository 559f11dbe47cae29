"""Library modules that ctrctl's process imports on first use instead of at import time.

protobuf's `descriptor_pool` (imported by every generated `*_pb2` module) imports
`google.protobuf.internal.python_message` at its top, and that module brings `text_format`,
`containers`, `decoder`/`encoder`, `type_checkers` and more. With the upb backend (protobuf's
default, and this machine's) none of it runs: `python_message` is the pure-Python message class,
used by `descriptor_pool` only for the pure-Python pool and by `message_factory` only when
`api_implementation.Type() == "python"`; upb imports `text_format` itself when a message is printed.

Measured 2026-12-06 (protobuf 7.36.2, upb, CPython 3.11.7, .pyc compiled, this 2-core machine):
importing `ctrd.v1.{container,system,image}_pb2` in a fresh `python3 -S` took 25.0 / 24.9 / 28.1 ms
with `python_message` imported as usual and 20.1 / 17.8 / 17.4 ms with it deferred (perf_counter
around the imports, runs interleaved); `-X importtime` put `python_message` with what it imports
at 7.4 to 7.7 ms of every `ctrctl version`, `ps -a` and `run`.

`importlib.util.LazyLoader` cannot do this: the `from google.protobuf.internal import
python_message` statement reads the module's `__spec__` (to see whether it is still
initialising), and that read runs a LazyLoader module. So the stand-in here is a module object
whose `__spec__` is the real module's spec and whose other attributes, on first read, import the
real module by the normal import system and come from it. It is fail-safe: whatever reads the
module (another protobuf version, the pure-Python backend, an extension being registered) gets
the real module, only later; a module that cannot be found is not deferred at all (a protobuf that
no longer has it imports what it needs as usual); and a module already imported is left alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

PROTOBUF_PYTHON_MESSAGE = "google.protobuf.internal.python_message"

# Re-entrant: the real module's own import may read the stand-in (a circular import), which then
# behaves as that circular import would without it. threading comes with protobuf anyway.
_lock = threading.RLock()


class DeferredModule(ModuleType):
    """Stands in `sys.modules` for a module until one of its attributes is read."""

    def __getattr__(self, attr: str) -> object:
        # Called only for attributes this object lacks: the import system's own (__name__,
        # __spec__, __loader__, __file__ ...) are set on it as the import system would, so reading
        # them imports nothing; any other read is answered by the real module.
        return getattr(self.load(), attr)

    def load(self) -> ModuleType:
        """The real module, imported now if it has not been yet."""
        with _lock:
            real = self.__dict__.get("_deferred_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__["_deferred_real"] = real
            return real


def defer(name: str) -> bool:
    """Put a stand-in for module `name` in sys.modules; False (nothing done) when the module is
    already imported or cannot be found."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    module = DeferredModule(name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = spec.parent
    if spec.has_location:
        module.__file__ = spec.origin
        module.__cached__ = spec.cached  # type: ignore[attr-defined]
    sys.modules[name] = module
    return True


def defer_protobuf_python_message() -> bool:
    return defer(PROTOBUF_PYTHON_MESSAGE)
