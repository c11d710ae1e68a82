"""`sunflower gate`: enroll a resident and check a photo from the command line (the local stack)."""

import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from sunflower.local.devstate import DEFAULT_DATA_DIR

_data_dir = click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR,
                         show_default=True, help="Where the local stack keeps its state.")


def _operator(community: str):
    """The person at the keyboard, as an administrator of this community: named in the audit log."""
    from sunflower.auth.principals import Principal, Role

    return Principal(id=f"cli-{getpass.getuser()}", roles=frozenset({Role.ADMIN}), community_id=community)


def _services(data_dir: Path):
    from sunflower.cli import _attach

    _attach(data_dir)
    from sunflower.container import services

    return services()


@click.group()
def gate() -> None:
    """Residential gates: face enrollment and checks."""


@gate.command()
@click.option("--community", required=True, help="Community id the resident lives in.")
@click.option("--person", "person_id", required=True, help="Person id in the population registry.")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--consent-method", type=click.Choice(["written", "app", "in_person"]), default="written",
              show_default=True, help="How the resident consented.")
@click.option("--consent-ref", default=None, help="Reference of the signed consent form (needed for written).")
@click.option("--consent-by", default=None, help="Person id of who consented, if a guardian [default: the resident].")
@click.option("--purpose", default="resident enrollment at the property office", show_default=True)
@_data_dir
def enroll(community: str, person_id: str, images: tuple[Path, ...], consent_method: str, consent_ref: str | None,
           consent_by: str | None, purpose: str, data_dir: Path) -> None:
    """Enroll a resident from 1 to 5 photos; only encrypted templates are kept, never the photos."""
    from sunflower.common.errors import DomainError
    from sunflower.gate.models import ConsentMethod
    from sunflower.gate.service import ConsentInput

    gate_service = _services(data_dir).gate
    consent = ConsentInput(consent_by or person_id, datetime.now(UTC), ConsentMethod(consent_method), consent_ref)
    try:
        enrollment = gate_service.enroll(_operator(community), community_id=community, person_id=person_id,
                                         photos=[p.read_bytes() for p in images], consent=consent, purpose=purpose)
    except DomainError as exc:
        for problem in exc.problems:
            click.echo(f"{problem.field}: {problem.message}", err=True)
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"communityId": enrollment.community_id, "personId": enrollment.person_id,
                           "templates": enrollment.template_count, "enrolledAt": enrollment.enrolled_at.isoformat()}))


@gate.command()
@click.option("--community", required=True, help="Community whose gallery to search.")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_data_dir
def check(community: str, image: Path, data_dir: Path) -> None:
    """Check a photo against a community's gallery as a gate would; print the decision as JSON.

    The check is recorded as an access event of the pseudo-gate `cli-<user>`: searching a gallery
    identifies people, so it leaves the same trail as a gate does.
    """
    from sunflower.devices.models import Device, DeviceKind, DeviceStatus

    gate_service = _services(data_dir).gate
    now = datetime.now(UTC)
    terminal = Device(f"cli-{getpass.getuser()}", DeviceKind.GATE, "command line", community, DeviceStatus.ACTIVE,
                      now, now)
    result = gate_service.check_face(terminal, image.read_bytes())
    click.echo(json.dumps(result.to_json()))
    sys.exit(0 if result.event.decision.value == "accept" else 1)
