"""``brainmets figures``: the cohort's plots from its tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainmets.cli.common import command_inputs
from brainmets.errors import ConfigError


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    fig = sub.add_parser(
        "figures",
        parents=parents,
        help="cohort plots from the cohort tables",
        description="Plot lesion sizes, tumour burden, locations and indications of a cohort.",
    )
    fig.add_argument("--lesions", required=True, metavar="TSV", help="the cohort lesion table")
    fig.add_argument("--studies", required=True, metavar="TSV", help="the cohort study table")
    fig.add_argument("--indications", metavar="TSV", help="the cohort indication table")
    fig.add_argument("--responses", metavar="TSV", help="the cohort response table (follow-ups): swimmer.png")
    fig.add_argument("--comparison-lesions", metavar="TSV", help="the cohort comparison_lesions table: comparison.png")
    fig.add_argument(
        "--comparison-detection",
        metavar="TSV",
        help="the cohort comparison_detection table: detection_by_size.png (recall and false positives per size bin)",
    )
    fig.add_argument(
        "--sessions",
        choices=("latest", "baseline", "all"),
        default="latest",
        help="which sessions of a patient followed over time the lesion, burden, location and indication plots "
        "show: the latest (default) or baseline session of each patient (a patient counts once), or all",
    )
    fig.add_argument(
        "--out-dir",
        required=True,
        metavar="DIR",
        help="writes lesion_size.png, volume_vs_count.png, location.png (and indications.png, swimmer.png, "
        "comparison.png, detection_by_size.png)",
    )
    fig.set_defaults(func=run)


def _read_tsv(path: str | Path) -> list[dict]:
    import csv

    from brainmets.config import read_text

    try:
        return list(csv.DictReader(read_text(path).splitlines(), delimiter="\t"))
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a table ({exc})") from None


def run(args: argparse.Namespace) -> dict:
    from brainmets.figures import pictures as figures
    from brainmets.figures.detection_plot import detection_by_size_plot
    from brainmets.indications import MODALITIES
    from brainmets.io import bids
    from brainmets.io.writers import atomic_outputs, check_outputs

    lesions, studies = _read_tsv(args.lesions), _read_tsv(args.studies)
    out = Path(args.out_dir)
    drawn = ["lesion_size", "volume_vs_count", "location"]
    drawn += ["indications"] if args.indications else []
    drawn += ["swimmer"] if args.responses else []
    drawn += ["comparison"] if args.comparison_lesions else []
    drawn += ["detection_by_size"] if args.comparison_detection else []
    names = [bids.figure_name(figure) for figure in drawn]
    check_outputs([out / n for n in names], command_inputs(args))
    chosen = figures.chosen_sessions(studies, args.sessions)
    patients = len({subject for subject, _ in chosen})
    scope = "" if args.sessions == "all" else f" of {patients} patients, {args.sessions} session each"
    lesions, studies = figures.of_sessions(lesions, chosen), figures.of_sessions(studies, chosen)
    with atomic_outputs(*(out / n for n in names)) as tmp:
        figures.size_distribution(tmp[0], lesions, scope)
        figures.volume_against_count(tmp[1], studies, scope)
        figures.locations(tmp[2], lesions, scope)
        made = dict(zip(names, tmp))
        if args.indications:
            indications = figures.of_sessions(_read_tsv(args.indications), chosen)
            figures.indication_frequencies(made[bids.figure_name("indications")], indications, MODALITIES, scope)
        if args.responses:
            figures.swimmer_plot(made[bids.figure_name("swimmer")], _read_tsv(args.responses))
        if args.comparison_lesions:
            figures.comparison_plot(made[bids.figure_name("comparison")], _read_tsv(args.comparison_lesions))
        if args.comparison_detection:
            detection_by_size_plot(made[bids.figure_name("detection_by_size")], _read_tsv(args.comparison_detection))
    return {n: out / n for n in names}
