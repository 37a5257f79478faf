"""Parse YAML with libyaml when PyYAML has it: the delivered manifests are read back on every observation and the
pure-Python parser is several times slower. Here, in the bottom layer, so the policy loader can share it.

Loading only: dumping stays with PyYAML's Python emitter (the C one escapes some characters differently, which
would change files already committed). Same tags and types either way (CSafeLoader has SafeLoader's constructor
and resolver). A document libyaml rejects is parsed again by the Python parser, so errors (and their messages and
marks, which users see for a bad policy) are exactly what they were.
"""
from __future__ import annotations

from typing import Any

import yaml

_FAST = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


def load_yaml(text: str) -> Any:
    """yaml.safe_load(text), faster."""
    try:
        return yaml.load(text, Loader=_FAST)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        if _FAST is yaml.SafeLoader:
            raise
        return yaml.safe_load(text)


def load_yaml_all(text: str) -> list:
    """list(yaml.safe_load_all(text)), faster."""
    try:
        return list(yaml.load_all(text, Loader=_FAST))  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        if _FAST is yaml.SafeLoader:
            raise
        return list(yaml.safe_load_all(text))
