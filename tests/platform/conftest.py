"""Our schemas of the real CRDs we target (schemas/core, schemas/managed), loaded once."""
from pathlib import Path

import jsonschema
import pytest
import yaml

SCHEMAS = Path(__file__).parent / "schemas"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def managed_schemas() -> dict:
    """(apiVersion, kind) -> the facts file of that managed resource (schema of its spec, provider version)."""
    out = {}
    for path in sorted((SCHEMAS / "managed").glob("*.yaml")):
        doc = _load(path)
        out[(doc["apiVersion"], doc["kind"])] = doc
    return out


@pytest.fixture(scope="session")
def core_schema():
    return lambda name: _load(SCHEMAS / "core" / f"{name}.yaml")


def errors(instance, schema) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(instance)]
