"""The `sunflower` command."""

import json
import runpy
import sys
from pathlib import Path

import click

from sunflower.local.devstate import DEFAULT_DATA_DIR

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "graphql" / "schema.graphql"
_data_dir = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
    help="Where the local stack keeps its state.",
)


@click.group()
def main() -> None:
    """Sunflower: the backend of a district's digital-governance centre."""


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port of the API on 127.0.0.1.")
@_data_dir
@click.option("--reset", is_flag=True, help="Forget the saved state and start clean.")
@click.option("--seed", "seed_name", type=click.Choice(["demo"]), help="Load a demo district.")
def dev(port: int, data_dir: Path, reset: bool, seed_name: str | None) -> None:
    """Run the whole system locally: embedded cloud, API, event pump and scheduler."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sunflower.local import devserver

    devserver.run(port=port, data_dir=data_dir, reset=reset, seed_name=seed_name)


def _attach(data_dir: Path):
    from sunflower.local import devstate

    state = devstate.read(data_dir)
    if state is None:
        raise click.ClickException(f"no local stack is running with data dir {data_dir}; start it with `sunflower dev`")
    state.export()
    return state


@main.command()
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeat for several).")
@click.option("--user", default="dev-user", show_default=True, help="User name, also the person id.")
@click.option("--community", default=None, help="Community the person works in or lives in.")
@click.option("--department", default=None, help="Department of an official.")
@_data_dir
def token(roles: tuple[str, ...], user: str, community: str | None, department: str | None, data_dir: Path) -> None:
    """Print a bearer token from the local stack's issuer."""
    from sunflower.auth.principals import Role
    from sunflower.local.identity import issue_token

    known = {r.value for r in Role}
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; roles are {', '.join(sorted(known))}", param_hint="--role")
    state = _attach(data_dir)
    click.echo(
        issue_token(
            state.user_pool_id, state.client_id, user=user, roles=[Role(r) for r in roles],
            community_id=community, department=department,
        )
    )


@main.command("export-schema")
@click.option("--check", is_flag=True, help="Fail if graphql/schema.graphql differs from the code.")
def export_schema(check: bool) -> None:
    """Write the GraphQL SDL to graphql/schema.graphql."""
    from sunflower.api.schema import sdl

    text = sdl()
    if check:
        if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != text:
            raise click.ClickException("graphql/schema.graphql is out of date: run `sunflower export-schema`")
        click.echo("graphql/schema.graphql is up to date")
        return
    SCHEMA_FILE.write_text(text)
    click.echo(f"wrote {SCHEMA_FILE.relative_to(REPO)}")


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command()
@_data_dir
@click.option("--cloud", is_flag=True, help="Use the AWS environment instead of the local stack.")
def verify(data_dir: Path, cloud: bool) -> None:
    """Check every entry's hash, every link and every sealed batch; exit 1 on any problem."""
    if not cloud:
        _attach(data_dir)
    from sunflower.container import services

    result = services().audit.verify()
    for problem in result.problems:
        click.echo(f"seq {problem.seq}: {problem.kind.value}: {problem.message}", err=True)
    click.echo(
        json.dumps(
            {"ok": result.ok, "entries_checked": result.entries_checked, "seals_checked": result.seals_checked,
             "problems": len(result.problems)}
        )
    )
    sys.exit(0 if result.ok else 1)


@audit.command()
@_data_dir
@click.option("--cloud", is_flag=True, help="Use the AWS environment instead of the local stack.")
def seal(data_dir: Path, cloud: bool) -> None:
    """Seal the entries written since the last seal into S3 now."""
    if not cloud:
        _attach(data_dir)
    from sunflower.container import services

    sealed = services().audit.seal()
    click.echo(json.dumps({"sealed": bool(sealed), **({"first_seq": sealed.first_seq, "last_seq": sealed.last_seq} if sealed else {})}))


@main.group()
def registry() -> None:
    """The population, legal-entity and credit registries."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["person", "entity", "credit"]), required=True, help="The registry to import into.")
@click.option("--department", default="cli", show_default=True, help="The uploading department, recorded with the job.")
@_data_dir
@click.option("--timeout", "timeout_s", default=1800, show_default=True, help="Seconds to wait for the import.")
def registry_import(file: Path, kind: str, department: str, data_dir: Path, timeout_s: int) -> None:
    """Import a CSV or XLSX file through the running local stack, as a department's upload is imported.

    Progress goes to stderr; the report ends stdout as one JSON line. Exit 1 if the file was refused.
    """
    import time

    _attach(data_dir)
    from sunflower.container import services
    from sunflower.registries.service import ImportKind

    imports = services().imports
    key, etag = imports.submit(ImportKind(kind), department, file.name, file.read_bytes())
    click.echo(f"uploaded {file.name} to {key}; waiting for the import", err=True)
    deadline, shown = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        job = imports.job_of_upload(key, etag)
        if job is not None:
            line = f"{job.status.value}: {job.processed:,} of {job.total:,} rows ({job.progress:.0%}), " \
                   f"{job.accepted:,} accepted, {job.unchanged:,} unchanged, {job.rejected:,} rejected"
            if job.error:
                line += f" ({job.error})"
            if line != shown:
                click.echo(line, err=True)
                shown = line
            if job.finished:
                if job.file_error:
                    click.echo(f"the file was refused: {job.file_error}", err=True)
                click.echo(json.dumps(job.summary(), ensure_ascii=False))
                sys.exit(1 if job.file_error else 0)
        time.sleep(0.5)
    raise click.ClickException(
        f"the import of {key} did not finish within {timeout_s} s; is `sunflower dev` (and its event pump) running?"
    )


@main.group()
def office() -> None:
    """Office workflows: the engine's built-in diagrams."""


@office.command("install")
@_data_dir
@click.option("--cloud", is_flag=True, help="Use the AWS environment instead of the local stack.")
def office_install(data_dir: Path, cloud: bool) -> None:
    """Deploy each built-in diagram (supervision, ...) unless the same one is deployed already; idempotent."""
    if not cloud:
        _attach(data_dir)
    from sunflower.container import services
    from sunflower.office.wiring import install_builtins

    for d in install_builtins(services().office):
        click.echo(json.dumps({"key": d.key, "version": d.version, "deployed_by": d.deployed_by,
                               "deployed_at": d.deployed_at.isoformat(), "bpmn_sha256": d.bpmn_sha256}))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.pass_context
def bench(ctx: click.Context, name: str) -> None:
    """Run bench/NAME.py; it prints its figures and ends with one JSON line."""
    path = REPO / "bench" / f"{name}.py"
    if not path.exists():
        known = sorted(p.stem for p in (REPO / "bench").glob("*.py") if not p.stem.startswith("_"))
        raise click.BadParameter(f"no benchmark {name!r}; known: {', '.join(known)}", param_hint="NAME")
    sys.argv = [str(path), *ctx.args]
    sys.path.insert(0, str(path.parent))  # as `python bench/NAME.py` would: its sibling modules import
    runpy.run_path(str(path), run_name="__main__")


@main.command()
def build() -> None:
    """Build the Lambda artifacts (.build/: app zip and layers) that infra/serverless.yml deploys; exit 1 if a function is over 250 MB."""
    from sunflower import build as builder

    sys.exit(builder.main())


from sunflower.traffic.cli import traffic as _traffic

main.add_command(_traffic)

from sunflower.gate.cli import gate as _gate

main.add_command(_gate)


if __name__ == "__main__":
    main()
