"""What every subcommand shares: exit codes, option types, the config, the files a command reads."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
from pathlib import Path

from brainmets.errors import ConfigError

log = logging.getLogger("brainmets")

EXIT_DATA_ERROR = 1
EXIT_USAGE = 2

LOG_FORMAT = "brainmets: %(levelname)s: %(message)s"


def finite_number(text: str) -> float:
    """An option's number: NaN and infinities are refused (argparse then exits 2 naming the option)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def command_config(args: argparse.Namespace) -> dict:
    """--config, then --config-json on top (section by section), validated, with defaults filled in."""
    from brainmets.config import read_config_file, validate_config

    config = validate_config(read_config_file(args.config), args.config) if args.config else {}
    if args.config_json:
        try:
            extra = json.loads(args.config_json)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"--config-json: not valid JSON ({exc or 'nested too deeply'})") from None
        if not isinstance(extra, dict):
            raise ConfigError("--config-json: expected a JSON object")
        for key, value in extra.items():
            before = config.get(key)
            config[key] = {**before, **value} if isinstance(before, dict) and isinstance(value, dict) else value
    return validate_config(config, "--config/--config-json")


#: Options (of any command) that name files or folders the command reads.
INPUT_OPTIONS = (
    "segmentation",
    "image",
    "parcellation",
    "parcellation_definition",
    "posterior_fossa_mask",
    "atlas",
    "atlas_dir",
    "template",
    "template_image",
    "template_labels",
    "template_labels_definition",
    "subject_image",
    "reference_series",
    "dicom_options",
    "config",
    "features",
    "features_status",
    "clinical",
    "rules",
    "documents",
    "status",
    "status_list",
    "indications",
    "indications_list",
    "lesions",
    "studies",
    "timeline",
    "followup",
    "followup_status",
    "followup_list",
    "responses",
    "reference",
    "prediction",
    "comparison",
    "comparison_status_list",
    "comparison_lesions",
    "comparison_detection",
    "followup_status_list",
)


def command_inputs(args: argparse.Namespace) -> list[str]:
    """Every file or folder the parsed command reads (the detached data files of NRRD / MetaImage headers
    included), so that no output may overwrite one."""
    from brainmets.errors import InputDataError
    from brainmets.io.readers import ITK_SUFFIXES, check_itk_text_header

    out: list[str] = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                out.append(item)
                if item.lower().endswith(ITK_SUFFIXES) and Path(item).is_file():
                    with contextlib.suppress(InputDataError, OSError):
                        out += [str(p) for p in check_itk_text_header(Path(item))[0]]
    return out


def check_identity(args: argparse.Namespace) -> None:
    """--subject and --session are BIDS labels (they name output files)."""
    from brainmets.identifiers import check_label

    check_label(args.subject, "--subject")
    check_label(args.session, "--session")


def flat(exc: BaseException) -> str:
    """An error's message on one line (YAML parsers, for one, write several)."""
    return " ".join(str(exc).split())


def study_label(args: argparse.Namespace, subject: str | None = None, session: str | None = None) -> str:
    """``sub-01 ses-01`` (the options', else the given identity), else the segmentation's file name."""
    subject, session = getattr(args, "subject", None) or subject, getattr(args, "session", None) or session
    if subject:
        return f"sub-{subject}" + (f" ses-{session}" if session else "")
    return Path(getattr(args, "segmentation", None) or getattr(args, "reference", None) or "study").name


def written(paths) -> str:
    """The files a command wrote, for its summary line: all of them when few, else how many and where."""
    import os

    paths = [str(p) for p in (paths.values() if isinstance(paths, dict) else paths)]
    if len(paths) <= 4:
        return ", ".join(paths)
    folder = os.path.commonpath([os.path.abspath(p) for p in paths])
    shown = os.path.relpath(folder) if not os.path.isabs(paths[0]) else folder
    where = "the current folder" if shown == "." else f"{shown}/"
    names = ", ".join(Path(p).name for p in paths[:3])
    return f"{len(paths)} files in {where} ({names}, ...)"


def summarize(args: argparse.Namespace, what: str, outputs) -> None:
    """A command's one-line summary on stderr when it succeeded, e.g. ``brainmets: sub-01 ses-01: 3 lesions,
    12.4 mL; wrote f.json, f.tsv``; -q/--quiet silences it. Inside ``brainmets batch`` stderr is the study's log."""
    if getattr(args, "quiet", False):
        return
    import sys

    print(f"brainmets: {what}; wrote {written(outputs)}", file=sys.stderr)


def indication_summary(args: argparse.Namespace, document: dict) -> str:
    """What ``indicate`` says on success: the modalities Table 1 marks indicated and undetermined."""
    label = study_label(args, document.get("subject"), document.get("session"))
    if document.get("status") == "not_evaluated":
        return f"{label}: not evaluated ({document.get('reason')})"
    modalities = document.get("modalities", {})
    indicated = [m for m, e in modalities.items() if e.get("status") == "indicated"]
    undetermined = [m for m, e in modalities.items() if e.get("status") == "undetermined"]
    text = f"{label}: Table 1 indicated: {', '.join(indicated) or 'none'}"
    return text + (f"; undetermined: {', '.join(undetermined)}" if undetermined else "") + " (research use only)"


# ---- the option groups several subcommands share: parent parsers (argparse ``parents=[...]``) ---------------
# Each subcommand is assembled from parents in the order its --help lists its options: these shared ones, and
# small parents of its own options between them. A shared option keeps its name, type and default everywhere;
# its help text (and metavar) say what it means for that command. `group`: the argument group (--help section)
# the options go to, merged with the command's own options of the same section.


def parent_parser() -> argparse.ArgumentParser:
    """An empty parent parser (no -h of its own), for a command's own options between the shared ones."""
    return argparse.ArgumentParser(add_help=False)


def _options(group: str | None) -> tuple[argparse.ArgumentParser, argparse._ActionsContainer]:
    parser = parent_parser()
    return parser, (parser.add_argument_group(group) if group else parser)


def verbosity_options() -> argparse.ArgumentParser:
    """-v/--verbose and -q/--quiet (every subcommand but batch)."""
    parser, where = _options(None)
    where.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    where.add_argument(
        "-q", "--quiet", action="store_true", help="no summary line on success (errors and warnings still show)"
    )
    return parser


def config_options(
    config_help: str, json_help: str = "the same as a JSON string (after --config)", group: str | None = None
) -> argparse.ArgumentParser:
    """--config (a YAML config file) and --config-json (the same as JSON, on top): read by :func:`command_config`."""
    parser, where = _options(group)
    where.add_argument("--config", metavar="YAML", help=config_help)
    where.add_argument("--config-json", metavar="JSON", help=json_help)
    return parser


def threads_options(threads_help: str) -> argparse.ArgumentParser:
    """--threads N (default: the CPUs this process may use, at most 4)."""
    from brainmets.config import default_threads

    parser, where = _options(None)
    where.add_argument("--threads", type=int, default=default_threads(), metavar="N", help=threads_help)
    return parser


def identity_options(
    subject_help: str = "subject label",
    session_help: str | None = "session label",
    group: str | None = None,
) -> argparse.ArgumentParser:
    """--subject and (unless `session_help` is None) --session: BIDS labels (:func:`check_identity`)."""
    parser, where = _options(group)
    where.add_argument("--subject", help=subject_help)
    if session_help is not None:
        where.add_argument("--session", help=session_help)
    return parser


def status_options(status_help: str, group: str | None = None) -> argparse.ArgumentParser:
    """--status-json: always write a status document (what the workflow's jobs do; see :mod:`.runner`)."""
    parser, where = _options(group)
    where.add_argument("--status-json", metavar="PATH", help=status_help)
    return parser


def scheme_options(scheme_help: str, group: str | None = None) -> argparse.ArgumentParser:
    """--scheme: the label scheme (a name, or a custom mapping ``enhancing=3;necrotic=1;edema=2``)."""
    parser, where = _options(group)
    where.add_argument("--scheme", metavar="NAME", help=scheme_help)
    return parser


#: The anatomical references a study's lesions are located with, as options (dest names).
REFERENCE_OPTIONS = ("parcellation", "posterior_fossa_mask", "atlas", "atlas_dir")


def reference_options(
    helps: dict[str, str],
    metavars: dict[str, str],
    parcellation_definition: str | None = None,
    group: str | None = None,
) -> argparse.ArgumentParser:
    """--parcellation, --posterior-fossa-mask, --atlas and --atlas-dir (:data:`REFERENCE_OPTIONS`, each with its
    help and metavar), and --parcellation-definition after --parcellation when its help is given."""
    parser, where = _options(group)
    for dest in REFERENCE_OPTIONS:
        where.add_argument(f"--{dest.replace('_', '-')}", metavar=metavars[dest], help=helps[dest])
        if dest == "parcellation" and parcellation_definition is not None:
            where.add_argument("--parcellation-definition", metavar="DEF", help=parcellation_definition)
    return parser
