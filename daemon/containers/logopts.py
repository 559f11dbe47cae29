"""The json-file options beyond rotation: `labels`, `env`, `labels-regex`, `env-regex` name the
container labels and env vars that docker copies into each log entry's "attrs" (what
`logs --details` shows)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ctrd.errdefs import InvalidArgument
from daemon.containers.record import Config

ATTR_OPTS = ("env", "env-regex", "labels", "labels-regex")


def check(opts: Mapping[str, str], driver: str) -> tuple[tuple[str, str], ...]:
    for key, value in opts.items():
        if key not in ATTR_OPTS:
            raise InvalidArgument(f"log_opts: unknown log opt {key!r} for log driver {driver} "
                                  f"({', '.join(('max-size', 'max-file', *ATTR_OPTS))})")
        if driver == "none":
            raise InvalidArgument("log_driver: none takes no log options")
        if key.endswith("-regex"):
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidArgument(f"log_opts: {key}: invalid regular expression {value!r}: {exc}") from None
    return tuple(sorted(opts.items()))


def attrs(config: Config, opts: Mapping[str, str]) -> dict[str, str]:
    """docker's ExtraAttributes: the named (or matching) labels and env vars the container has."""
    out: dict[str, str] = {}
    labels = dict(config.labels)
    env = dict(e.partition("=")[::2] for e in config.env)
    for source, names_key, regex_key in ((labels, "labels", "labels-regex"), (env, "env", "env-regex")):
        for name in (n.strip() for n in opts.get(names_key, "").split(",")):
            if name and name in source:
                out[name] = source[name]
        if opts.get(regex_key):
            pattern = re.compile(opts[regex_key])
            out.update({k: v for k, v in source.items() if pattern.search(k)})
    return out
