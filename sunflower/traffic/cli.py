"""`sunflower traffic ...`: corridors from SUMO networks, plan exports; `plan` and `diagram` ask the local stack."""

import json
import sys
from pathlib import Path

import click


@click.group()
def traffic() -> None:
    """Signal corridors: import from SUMO, export plans."""


@traffic.command("import-sumo")
@click.argument("net", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--corridor", "junctions", default=None,
              help="Signalised junction (or signal) ids in order, comma-separated; default: the longest chain.")
@click.option("--id", "corridor_id", default=None, help="Corridor id (default: the file name).")
@click.option("--name", default=None, help="Corridor name.")
@click.option("--design-speed", type=float, default=None, help="km/h (default: the arterial's speed limit).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the corridor JSON here instead of standard output.")
@click.option("--plan-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the network's own programs as plan v0 (JSON).")
@click.option("--tllogic-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write plan v0 as a SUMO tlLogic additional file.")
@click.option("--diagram", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw plan v0's time-space diagram (.svg or .png).")
def import_sumo(net: Path, junctions: str | None, corridor_id: str | None, name: str | None,
                design_speed: float | None, out: Path | None, plan_out: Path | None, tllogic_out: Path | None,
                diagram: Path | None) -> None:
    """Create a corridor from a netconvert-generated SUMO network (NET.net.xml)."""
    from sunflower.common.errors import DomainError
    from sunflower.traffic import export, sumo

    try:
        corridor = sumo.import_corridor(
            net, [j.strip() for j in junctions.split(",") if j.strip()] if junctions else None,
            corridor_id=corridor_id, name=name, design_speed_kmh=design_speed,
        )
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    text = corridor.model_dump_json(indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    if plan_out or tllogic_out or diagram:
        plan = sumo.imported_plan(corridor, net)
        if plan_out:
            plan_out.write_text(export.plan_json(plan) + "\n", encoding="utf-8")
        if tllogic_out:
            tllogic_out.write_text(export.sumo_tllogic_xml(corridor, plan), encoding="utf-8")
        if diagram:
            from sunflower.traffic.diagram import time_space_diagram

            diagram.write_bytes(time_space_diagram(corridor, plan, fmt="png" if diagram.suffix == ".png" else "svg"))
    summary = {
        "corridor": corridor.id, "intersections": [i.id for i in corridor.intersections],
        "length_m": corridor.intersections[-1].position_m, "detectors": len(corridor.detectors),
        "design_speed_kmh": corridor.design_speed_kmh,
        "directions": [corridor.forward_label, corridor.reverse_label],
    }
    click.echo(json.dumps(summary, ensure_ascii=False), err=out is None)
    sys.stdout.flush()


# --- against the running local stack (`sunflower dev`) --------------------------------------------

_data_dir = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                         help="Where the local stack keeps its state [default: the dev stack's].")


def _stack(data_dir: Path | None):
    """The traffic service of the running local stack, and the person at the keyboard as a traffic engineer."""
    import getpass

    from sunflower.auth.principals import Principal, Role
    from sunflower.cli import _attach
    from sunflower.local.devstate import DEFAULT_DATA_DIR

    _attach(data_dir or DEFAULT_DATA_DIR)
    from sunflower.container import services

    return services().traffic, Principal(id=f"cli-{getpass.getuser()}", roles=frozenset({Role.TRAFFIC_ENGINEER}))


def _plan_of(traffic, operator, corridor_id: str, version: int | None):
    from sunflower.common.errors import DomainError

    try:
        corridor = traffic.corridor(operator, corridor_id)
        plan = traffic.plan(operator, corridor_id, version).plan if version is not None else \
            traffic.in_force(corridor_id).plan
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    return corridor, plan


@traffic.command("plan")
@click.option("--corridor", "corridor_id", required=True, help="Corridor id.")
@click.option("--version", type=int, default=None, help="A stored plan version [default: the plan in force].")
@click.option("--sumo", is_flag=True, help="Print a SUMO tlLogic additional file instead of the controller JSON.")
@_data_dir
def plan_command(corridor_id: str, version: int | None, sumo: bool, data_dir: Path | None) -> None:
    """Print a corridor's plan (in force, or --version) as controllers get it, or as SUMO tlLogic XML."""
    from sunflower.traffic import export

    corridor, plan = _plan_of(*_stack(data_dir), corridor_id, version)
    if sumo:
        try:
            click.echo(export.sumo_tllogic_xml(corridor, plan), nl=False)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        click.echo(export.plan_json(plan))


@traffic.command("diagram")
@click.option("--corridor", "corridor_id", required=True, help="Corridor id.")
@click.option("--version", type=int, default=None, help="A stored plan version [default: the plan in force].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (.svg or .png) [default: CORRIDOR-vVERSION.svg].")
@click.option("--cycles", type=int, default=3, show_default=True, help="Cycles to draw.")
@_data_dir
def diagram_command(corridor_id: str, version: int | None, out: Path | None, cycles: int,
                    data_dir: Path | None) -> None:
    """Draw the time-space diagram of a corridor's plan: the green waves at the design speed."""
    from sunflower.traffic.diagram import time_space_diagram

    corridor, plan = _plan_of(*_stack(data_dir), corridor_id, version)
    out = out or Path(f"{corridor.id}-v{plan.version}.svg")
    out.write_bytes(time_space_diagram(corridor, plan, cycles=cycles, fmt="png" if out.suffix == ".png" else "svg"))
    click.echo(str(out))
