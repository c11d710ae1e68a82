"""graphql/schema.graphql is exported from the code; CI fails when the committed file drifts."""

from pathlib import Path

from sunflower.api.schema import sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_the_committed_sdl_is_the_schema_the_code_serves():
    assert SCHEMA_FILE.read_text() == sdl(), "graphql/schema.graphql is out of date: run `sunflower export-schema`"


def test_every_operation_document_validates_against_the_schema():
    from graphql import build_schema, parse, validate

    schema = build_schema(SCHEMA_FILE.read_text())
    for path in sorted((SCHEMA_FILE.parent / "operations").glob("*.graphql")):
        errors = validate(schema, parse(path.read_text()))
        assert not errors, f"{path.name}: {errors}"
