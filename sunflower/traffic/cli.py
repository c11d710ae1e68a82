"""`sunflower traffic ...`: corridors from SUMO networks and plan exports, without the cloud."""

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
