"""The distribution's version, in one place: pyproject.toml reads it at build time
([tool.hatch.version]), and `ctrd-runtime --version` / `ctrctl version` print it without
importlib.metadata, whose import and scan of sys.path cost ~20 ms of a ~30 ms `--version` here."""

__version__ = "0.1.0"
