"""Command line: ``brainmets features``, ``indicate``, ``cohort``, ``figures``, ``batch``; the one place that maps
errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import BrainmetsError, ConfigError

log = logging.getLogger("brainmets")

EXIT_DATA_ERROR = 1
EXIT_USAGE = 2

#: Command-line options that set a value of the config's ``features`` section: (dest, config path).
FEATURE_OPTIONS = {
    "scheme": ("label_scheme",),
    "connectivity": ("connectivity",),
    "min_lesion_volume_mm3": ("min_lesion_volume_mm3",),
    "min_edema_volume_mm3": ("min_edema_component_volume_mm3",),
    "merge_distance_mm": ("merge_distance_mm",),
    "rano_min_longest_mm": ("rano_bm", "min_longest_diameter_mm"),
    "rano_min_perpendicular_mm": ("rano_bm", "min_perpendicular_diameter_mm"),
    "rano_min_slices": ("rano_bm", "min_axial_slices"),
    "rano_max_targets": ("rano_bm", "max_target_lesions"),
}


def finite_number(text: str) -> float:
    """An option's number: NaN and infinities are refused (argparse then exits 2 naming the option)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _add_features_arguments(feat: argparse.ArgumentParser) -> None:
    """The options of `features`."""
    feat.add_argument(
        "segmentation",
        metavar="SEG",
        help="label map: NIfTI (.nii, .nii.gz), NRRD, MetaImage, or DICOM (SEG, RTSTRUCT or a label series: "
        "a file or a folder)",
    )
    out = feat.add_argument_group("outputs (at least one)")
    out.add_argument(
        "--out-json", metavar="PATH", help="the JSON document: study, lesions, edema_only_components, provenance"
    )
    out.add_argument(
        "--out-tsv", metavar="PATH", help="one row per lesion (TSV); its data dictionary is written beside it as .json"
    )
    out.add_argument(
        "--out-instances", metavar="PATH", help="lesion instance label map (NIfTI): core voxels carry their lesion_id"
    )
    out.add_argument("--out-figure", metavar="PNG", help="axial slices through each lesion, outlines and ids drawn")
    out.add_argument(
        "--image", metavar="FILE", help="background of --out-figure (e.g. the T1c); default: the label map"
    )
    out.add_argument(
        "--status-json",
        metavar="PATH",
        help="always write a status document (ok, or failed and why) and exit 0 on a bad study, as the workflow does",
    )
    out.add_argument(
        "--out-dir",
        metavar="DIR",
        help="write all three under DIR with BIDS-Derivatives style names "
        "(<base>_desc-brainmets_features.json, <base>_desc-lesions_features.tsv/.json, <base>_desc-lesions_dseg.nii.gz)",
    )
    ident = feat.add_argument_group("study identity (recorded in the outputs)")
    ident.add_argument("--subject", help="subject label")
    ident.add_argument("--session", help="session label")
    par = feat.add_argument_group("parameters (defaults: see README; command-line values override --config)")
    par.add_argument(
        "--config", metavar="YAML", help="config file; its 'features' and 'anatomy' sections set the parameters"
    )
    par.add_argument(
        "--config-json", metavar="JSON", help="the same as a JSON string (after --config; the workflow passes this)"
    )
    par.add_argument(
        "--scheme", metavar="NAME", help="label scheme: brats-mets-2023 (default), brats-2021, brats-2015, binary"
    )
    par.add_argument(
        "--custom-labels",
        metavar="SPEC",
        help='custom label scheme, e.g. "enhancing=3;necrotic=1;edema=2;cavity=4" (roles: enhancing, necrotic, core, edema, cavity, ignored)',
    )
    par.add_argument("--connectivity", type=int, choices=(6, 18, 26), help="lesion voxel connectivity (default 26)")
    par.add_argument(
        "--min-lesion-volume-mm3", type=finite_number, metavar="MM3", help="smallest lesion kept (default 20)"
    )
    par.add_argument(
        "--min-edema-volume-mm3",
        type=finite_number,
        metavar="MM3",
        help="smallest edema-only component kept (default 20)",
    )
    par.add_argument(
        "--merge-distance-mm",
        type=finite_number,
        metavar="MM",
        help="merge cores at most this far apart (default 0: off)",
    )
    par.add_argument(
        "--rano-min-longest-mm",
        type=finite_number,
        metavar="MM",
        help="RANO-BM measurable longest diameter (default 10)",
    )
    par.add_argument(
        "--rano-min-perpendicular-mm",
        type=finite_number,
        metavar="MM",
        help="RANO-BM measurable perpendicular diameter (default 5)",
    )
    par.add_argument(
        "--rano-min-slices", type=int, metavar="N", help="RANO-BM measurable axial slice count (default 2)"
    )
    par.add_argument("--rano-max-targets", type=int, metavar="N", help="RANO-BM target lesions at most (default 5)")
    ana = feat.add_argument_group(
        "anatomical reference (one of them; without one, location fields are null and say why)"
    )
    ana.add_argument(
        "--parcellation", metavar="FILE", help="FreeSurfer/SynthSeg label map of the same subject (any grid)"
    )
    ana.add_argument(
        "--parcellation-definition",
        metavar="DEF",
        help="how to read --parcellation: a built-in definition (default freesurfer) or a YAML file",
    )
    ana.add_argument(
        "--posterior-fossa-mask", metavar="FILE", help="binary posterior-fossa mask in the segmentation's space"
    )
    ana.add_argument(
        "--atlas", metavar="DEF", help="atlas in the segmentation's space: built-in definition (sri24) or a YAML file"
    )
    ana.add_argument("--atlas-dir", metavar="DIR", help="folder of the atlas's (or template's) images")
    ana.add_argument(
        "--template",
        metavar="DEF",
        help="register this definition's template (e.g. sri24, with --atlas-dir) to --subject-image",
    )
    ana.add_argument("--template-image", metavar="FILE", help="T1 template image to register to --subject-image")
    ana.add_argument(
        "--template-labels",
        metavar="FILE",
        help="label image in the template's space (read as --template-labels-definition)",
    )
    ana.add_argument(
        "--template-labels-definition", metavar="DEF", help="definition of --template-labels (default freesurfer)"
    )
    ana.add_argument(
        "--subject-image", metavar="FILE", help="the subject's T1 or T1c image, on the segmentation's grid or not"
    )
    ana.add_argument(
        "--reference-alignment",
        choices=("world", "voxel"),
        help="world (default): place the reference by its affine; voxel: same voxel grid, headers ignored",
    )
    dcm = feat.add_argument_group("DICOM inputs (SEG, RTSTRUCT, label series; see README, DICOM)")
    dcm.add_argument(
        "--reference-series",
        metavar="DIR",
        help="folder of the image series an RTSTRUCT's contours (or a SEG's frames) refer to "
        "(default: the RTSTRUCT's or SEG's folder)",
    )
    dcm.add_argument(
        "--dicom-options",
        metavar="YAML",
        help="YAML file with a 'dicom' section (segment_roles, segment_codes, unmatched, overlap_priority, "
        "fractional_threshold) for this study, over the config's",
    )
    dcm.add_argument(
        "--fractional-threshold",
        type=finite_number,
        metavar="F",
        help="a FRACTIONAL DICOM SEG's voxel belongs to a segment at this fraction or more (default 0.5)",
    )
    feat.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        metavar="N",
        help="threads measuring lesions (default: the CPUs this process may use, at most 4; results do not depend on it)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (the option and the problem) instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="brainmets",
        description="Brain-metastasis lesion features from segmentation label maps (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"brainmets {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    feat = sub.add_parser(
        "features",
        parents=[common],
        help="measure every lesion of one segmentation",
        description="Measure every lesion of one segmentation label map and summarise the study.",
    )
    _add_features_arguments(feat)
    feat.set_defaults(func=run_features)

    ind = sub.add_parser(
        "indicate",
        parents=[common],
        help="which treatments the review's Table 1 supports for one study (research use only)",
        description="Evaluate the review's Table 1 for one study, from its features and clinical data. "
        "Research use only: not a treatment recommendation.",
    )
    ind.add_argument("--features", required=True, metavar="JSON", help="the study's 'brainmets features' document")
    ind.add_argument(
        "--features-status",
        metavar="JSON",
        help="the features step's status document: when it failed, write a 'not evaluated' document instead",
    )
    ind.add_argument(
        "--clinical",
        metavar="TSV",
        help="clinical table (one row per subject/session); without it every clinical input is unknown",
    )
    ind.add_argument("--subject", help="subject label (default: the one in the features document)")
    ind.add_argument("--session", help="session label (default: the one in the features document)")
    ind.add_argument("--out-json", required=True, metavar="PATH", help="the indication document")
    ind.add_argument("--rules", metavar="YAML", help="an edited copy of the rule table (default: the built-in one)")
    ind.add_argument("--config", metavar="YAML", help="config file; its 'indications' section sets thresholds")
    ind.add_argument("--config-json", metavar="JSON", help="the same as a JSON string (after --config)")
    ind.add_argument("--status-json", metavar="PATH", help="always write a status document; exit 0 on a bad study")
    ind.set_defaults(func=run_indicate)

    coh = sub.add_parser(
        "cohort",
        parents=[common],
        help="gather per-study documents into cohort tables",
        description="Gather 'brainmets features' and 'indicate' documents into lesion, study, indication and status tables.",
    )
    coh.add_argument("documents", nargs="*", metavar="FEATURES_JSON")
    coh.add_argument(
        "--status",
        nargs="+",
        default=[],
        metavar="STATUS_JSON",
        help="status documents of 'features --status-json' (failed studies are listed, not tabulated)",
    )
    coh.add_argument("--out-status", metavar="TSV", help="one row per study: ok or failed, and why")
    coh.add_argument("--parquet", action="store_true", help="also write each table as Parquet")
    coh.add_argument(
        "--out-lesions", required=True, metavar="TSV", help="one row per lesion (data dictionary beside it)"
    )
    coh.add_argument(
        "--out-studies", required=True, metavar="TSV", help="one row per study (data dictionary beside it)"
    )
    coh.add_argument(
        "--indications", nargs="+", default=[], metavar="INDICATIONS_JSON", help="'brainmets indicate' documents"
    )
    coh.add_argument("--out-indications", metavar="TSV", help="one row per study: statuses, criteria met, scores")
    for option, what in (("status", "--status"), ("indications", "--indications")):
        coh.add_argument(
            f"--{option}-list",
            metavar="FILE",
            help=f"a file naming more {what} documents, one path per line (for cohorts whose paths would "
            "overflow a command line; the workflow passes them this way)",
        )
    coh.set_defaults(func=run_cohort)

    fig = sub.add_parser(
        "figures",
        parents=[common],
        help="cohort plots from the cohort tables",
        description="Plot lesion sizes, tumour burden, locations and indications of a cohort.",
    )
    fig.add_argument("--lesions", required=True, metavar="TSV", help="the cohort lesion table")
    fig.add_argument("--studies", required=True, metavar="TSV", help="the cohort study table")
    fig.add_argument("--indications", metavar="TSV", help="the cohort indication table")
    fig.add_argument(
        "--out-dir",
        required=True,
        metavar="DIR",
        help="writes lesion_size.png, volume_vs_count.png, location.png (and indications.png)",
    )
    fig.set_defaults(func=run_figures)

    desc = sub.add_parser(
        "dataset-description",
        parents=[common],
        help="write the BIDS-Derivatives dataset_description.json of a results folder",
    )
    desc.add_argument("--out", required=True, metavar="JSON")
    desc.set_defaults(func=run_dataset_description)

    batch = sub.add_parser(
        "batch",
        help="run one command for many studies in one process (what the workflow's jobs do)",
        description="Run `features` or `indicate` for many studies in one process, so the cost of starting "
        "Python and importing the scientific stack is paid once per batch, not once per study. Each study's "
        "messages go to its own log; a study that fails does not stop the others.",
    )
    batch.add_argument(
        "--jobs-json",
        required=True,
        metavar="JSON",
        help='{"command": "features"|"indicate", "common": [options of every study], '
        '"studies": [{"args": [options of one study], "log": path}, ...]}',
    )
    batch.set_defaults(func=None)
    return parser


def default_threads() -> int:
    """CPUs this process may use (respects affinity masks such as SLURM's), at most 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


def _config(args: argparse.Namespace) -> dict:
    """--config, then --config-json on top (section by section), validated, with defaults filled in."""
    from .config import read_config_file, validate_config

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


ANATOMY_OPTIONS = (
    "parcellation",
    "posterior_fossa_mask",
    "atlas",
    "template",
    "template_image",
    "template_labels",
)


def _reference_choice(args: argparse.Namespace, anatomy: dict):
    """The study's anatomical reference: command-line options, else the config's atlas or template."""
    from .anatomy import ReferenceChoice

    given = {name: getattr(args, name) for name in ANATOMY_OPTIONS if getattr(args, name)}
    if not given:  # the config's default reference, if any
        given = {
            name: anatomy[name]
            for name in ("atlas", "template", "template_image", "template_labels")
            if anatomy.get(name)
        }
    return ReferenceChoice(
        **given,
        atlas_dir=args.atlas_dir or anatomy["atlas_dir"],
        subject_image=args.subject_image,
        parcellation_definition=args.parcellation_definition or anatomy["parcellation_definition"],
        template_labels_definition=args.template_labels_definition or anatomy["template_labels_definition"],
        alignment=args.reference_alignment or anatomy["alignment"],
    )


def _feature_config(args: argparse.Namespace, config: dict) -> dict:
    """The ``features`` config section: --config first, then explicit options on top."""
    section = copy.deepcopy(config["features"])
    if args.custom_labels:
        if args.scheme:
            raise ConfigError("give either --scheme or --custom-labels, not both")
        from .errors import LabelSchemeError
        from .labels import parse_custom_labels

        try:
            section["label_scheme"] = parse_custom_labels(args.custom_labels)
        except LabelSchemeError as exc:
            raise ConfigError(f"--custom-labels: {exc}") from None
    for dest, path in FEATURE_OPTIONS.items():
        value = getattr(args, dest)
        if value is not None:
            target = section
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
    return section


def _dicom_options(args: argparse.Namespace, config: dict):
    """How DICOM segments map to roles: the config's ``dicom`` section, --dicom-options, then the options."""
    from .config import read_config_file, validate_config
    from .io.dicom import DicomOptions

    section = dict(config["dicom"])
    if args.dicom_options:
        extra = read_config_file(args.dicom_options)
        if set(extra) != {"dicom"}:
            raise ConfigError(f"{args.dicom_options}: expected a mapping with one key, 'dicom'")
        section.update(validate_config(extra, args.dicom_options)["dicom"])
    if args.fractional_threshold is not None:
        section["fractional_threshold"] = args.fractional_threshold
        section = validate_config({"dicom": section}, "--fractional-threshold")["dicom"]
    for item in section["segment_roles"] or []:
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise ConfigError(f"dicom.segment_roles: {item['pattern']!r} is not a regular expression ({exc})") from None
    return DicomOptions.from_config(section, args.reference_series)


SEG_SUFFIX = re.compile(r"(\.nii\.gz|\.nii|\.nrrd|\.nhdr|\.mha|\.mhd|\.dcm)$", re.IGNORECASE)


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Resolve the requested outputs; refuse duplicates, folders, and any output that is an input."""
    from .identifiers import inside
    from .io.writers import check_outputs

    paths = {}
    if args.out_dir:
        if args.subject:
            base = f"sub-{args.subject}" + (f"_ses-{args.session}" if args.session else "")
        else:
            base = SEG_SUFFIX.sub("", Path(args.segmentation).name)
        out_dir = Path(args.out_dir)
        paths = {
            "json": inside(out_dir / f"{base}_desc-brainmets_features.json", out_dir),
            "tsv": inside(out_dir / f"{base}_desc-lesions_features.tsv", out_dir),
            "instances": inside(out_dir / f"{base}_desc-lesions_dseg.nii.gz", out_dir),
        }
    named = {key: value for key in ("json", "tsv", "instances", "figure") if (value := getattr(args, f"out_{key}"))}
    paths.update({key: Path(value) for key, value in named.items()})
    if not paths:
        raise ConfigError("no output requested: give --out-json, --out-tsv, --out-instances, --out-figure or --out-dir")
    if "tsv" in paths:
        paths["dictionary"] = paths["tsv"].with_suffix(".json")
    if "instances" in paths and not str(paths["instances"]).lower().endswith((".nii", ".nii.gz")):
        raise ConfigError(f"--out-instances {paths['instances']}: the instance map is NIfTI, name it .nii.gz or .nii")
    if "figure" in paths and not str(paths["figure"]).lower().endswith(".png"):
        raise ConfigError(f"--out-figure {paths['figure']}: the picture is a PNG, name it .png")
    outputs = [*named.values(), *(path for key, path in paths.items() if key not in named)]  # as given: "dir/"
    check_outputs([*outputs, *([args.status_json] if args.status_json else [])], _inputs(args))
    return paths


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
)


def _inputs(args: argparse.Namespace) -> list[str]:
    """Every file or folder the parsed command reads (the detached data files of NRRD / MetaImage headers
    included), so that no output may overwrite one."""
    from .errors import InputDataError
    from .io.readers import ITK_SUFFIXES, check_itk_text_header

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


def _check_identity(args: argparse.Namespace) -> None:
    """--subject and --session are BIDS labels (they name output files)."""
    from .identifiers import check_label

    check_label(args.subject, "--subject")
    check_label(args.session, "--session")


def run_features(args: argparse.Namespace) -> dict:
    _check_identity(args)
    return _write_features(args, _config(args))[0]


def _write_features(args: argparse.Namespace, config: dict):
    """Compute one study's features and write the requested outputs; returns (paths, result)."""
    from .anatomy import LocationParameters, RegistrationParameters, build_reference
    from .config import FeatureParameters
    from .features import LESION_FIELDS, compute_features, data_dictionary
    from .io import load_segmentation
    from .io.writers import atomic_outputs, write_json, write_nifti, write_tsv

    paths = output_paths(args)
    params = FeatureParameters.from_config(_feature_config(args, config))
    choice = _reference_choice(args, config["anatomy"])
    if args.image:  # refused before the segmentation is processed, when its header claims too much
        from .report.figures import check_background_image

        check_background_image(args.image, params.max_voxels)
    label_map = load_segmentation(args.segmentation, _dicom_options(args, config), params.max_voxels)
    if label_map.scheme is not None:  # DICOM SEG / RTSTRUCT: the segments say what each label is
        params = dataclasses.replace(params, scheme=label_map.scheme)
    reference = build_reference(
        choice,
        label_map,
        RegistrationParameters.from_config(config["anatomy"]["registration"]),
        max_voxels=params.max_voxels,
    )
    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {args.threads}")
    result = compute_features(
        label_map,
        params,
        subject=args.subject,
        session=args.session,
        threads=args.threads,
        reference=reference,
        location=LocationParameters.from_config(config["anatomy"]),
    )
    keys = list(paths)
    with atomic_outputs(*paths.values()) as tmp_paths:
        tmp = dict(zip(keys, tmp_paths))
        if "json" in tmp:
            write_json(tmp["json"], result.document)
        if "tsv" in tmp:
            key_cols = [c for c in ("subject", "session") if result.study.get(c) is not None]
            rows = [{**{c: result.study[c] for c in key_cols}, **row} for row in result.lesions]
            write_tsv(tmp["tsv"], key_cols + [f.name for f in LESION_FIELDS], rows)
            write_json(tmp["dictionary"], data_dictionary(LESION_FIELDS))
        if "instances" in tmp:
            write_nifti(tmp["instances"], result.instances, result.affine)
        if "figure" in tmp:
            _study_figure(tmp["figure"], label_map, result, params, args)
    log.info(
        "%s: %d lesion(s), cumulative tumour volume %.3f mL",
        args.segmentation,
        result.study["lesion_count"],
        result.study["cumulative_tumor_volume_ml"],
    )
    return paths, result


def _study_figure(path: Path, label_map, result, params, args: argparse.Namespace) -> None:
    from .labels import CORE_ROLES, Role, role_mask
    from .report.figures import image_on_grid, study_figure

    scheme = params.scheme
    masks = {
        "core": role_mask(label_map.labels, scheme, *CORE_ROLES),
        "enhancing": role_mask(label_map.labels, scheme, Role.ENHANCING),
        "edema": role_mask(label_map.labels, scheme, Role.EDEMA),
    }
    image = image_on_grid(args.image, label_map.affine, label_map.shape, params.max_voxels) if args.image else None
    name = " ".join(
        x for x in (f"sub-{args.subject}" if args.subject else "", f"ses-{args.session}" if args.session else "") if x
    )
    study_figure(
        path,
        label_map.labels,
        label_map.affine,
        masks,
        result.lesions,
        result.instances,
        image,
        title=f"{name or Path(args.segmentation).name}: {result.study['lesion_count']} lesion(s)",
    )


def _read_features_document(path: str | Path) -> dict:
    from .config import read_features_document
    from .errors import InputDataError

    return read_features_document(path, InputDataError)


def _not_evaluated(args: argparse.Namespace, reason: str, subject=None, session=None) -> dict:
    from .indications import DISCLAIMER

    return {
        "research_use_only": True,
        "disclaimer": DISCLAIMER,
        "subject": args.subject or subject,
        "session": args.session or session,
        "status": "not_evaluated",
        "reason": reason,
    }


def _indications(document: dict, args: argparse.Namespace, config: dict, features_path: str | None) -> dict:
    """The indication document of one study's features document."""
    from .indications import RuleSet, evaluate_study
    from .indications.clinical import find_row, read_clinical
    from .indications.engine import histologies
    from .io.readers import file_sha256

    rules = RuleSet.load(args.rules or config["indications"]["rules"], config["indications"]["thresholds"])
    subject = args.subject or document["study"].get("subject")
    session = args.session or document["study"].get("session")
    clinical_path = args.clinical or config["clinical"]
    row = None
    if clinical_path:
        rows = read_clinical(clinical_path, set(histologies()))
        if subject is None:
            raise ConfigError("give --subject: the features document names no subject")
        row = find_row(rows, subject, session, clinical_path)
        if row is None:
            log.warning(
                "%s: no row for subject %s, session %s: clinical inputs unknown", clinical_path, subject, session
            )
    provenance = {
        "features_sha256": file_sha256(Path(features_path)) if features_path else None,
        "segmentation_sha256": document.get("provenance", {}).get("input_sha256"),
        "clinical_sha256": file_sha256(Path(clinical_path)) if clinical_path else None,
        "clinical_row_found": row is not None,
    }
    result = evaluate_study(document, row, rules, provenance)
    result["subject"], result["session"], result["status"] = subject, session, "evaluated"
    log.info("%s: %s", subject, ", ".join(f"{m} {e['status']}" for m, e in result["modalities"].items()))
    return result


def run_indicate(args: argparse.Namespace) -> dict:
    from .io.writers import atomic_path, check_outputs, write_json

    _check_identity(args)
    check_outputs([args.out_json, *([args.status_json] if args.status_json else [])], _inputs(args))
    if args.features_status:
        from .config import read_json
        from .errors import InputDataError

        upstream = read_json(args.features_status, "brainmets status document", InputDataError)
        if upstream.get("status") != "ok":
            document = _not_evaluated(
                args,
                f"the features step failed: {upstream.get('error')}",
                upstream.get("subject"),
                upstream.get("session"),
            )
            with atomic_path(args.out_json) as tmp:
                write_json(tmp, document)
            return {"json": args.out_json}
    result = _indications(_read_features_document(args.features), args, _config(args), args.features)
    with atomic_path(args.out_json) as tmp:
        write_json(tmp, result)
    return {"json": args.out_json}


def _path_list(path: str | None) -> list[str]:
    """The non-empty lines of a list file (``-`` or ``/dev/stdin``: standard input)."""
    if not path:
        return []
    from .config import read_text

    text = sys.stdin.read() if path == "-" else read_text(path)
    return [line.strip() for line in text.splitlines() if line.strip()]


def run_cohort(args: argparse.Namespace) -> int:
    from .cohort import gather, table_files, write_tables
    from .io.writers import check_outputs

    args.status = args.status + _path_list(args.status_list)
    args.indications = args.indications + _path_list(args.indications_list)
    if not (args.documents or args.status):
        raise ConfigError("give features documents, or --status documents of the workflow's features step")
    outputs = {"lesions": args.out_lesions, "studies": args.out_studies}
    for name, value in (("indications", args.out_indications), ("status", args.out_status)):
        if value:
            outputs[name] = value
    if bool(args.indications) != bool(args.out_indications):
        raise ConfigError("give --indications and --out-indications together")
    files = [path for _, _, path in table_files(outputs, args.parquet)]
    check_outputs(files, _inputs(args))
    tables = gather(args.documents, args.status, args.indications)
    check_outputs(files, tables.sources)  # the features documents the status documents named, too
    write_tables(tables, outputs, parquet=args.parquet)
    failed = [r for r in tables.status if r["features_status"] != "ok"]
    for row in failed:
        log.warning(
            "sub-%s%s failed: %s",
            row["subject"],
            f" ses-{row['session']}" if row["session"] else "",
            row["features_error"],
        )
    return 0


def _read_tsv(path: str | Path) -> list[dict]:
    import csv

    from .config import read_text

    try:
        return list(csv.DictReader(read_text(path).splitlines(), delimiter="\t"))
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a table ({exc})") from None


def run_figures(args: argparse.Namespace) -> dict:
    from .indications import MODALITIES
    from .io.writers import atomic_outputs, check_outputs
    from .report import figures

    lesions, studies = _read_tsv(args.lesions), _read_tsv(args.studies)
    out = Path(args.out_dir)
    names = ["lesion_size.png", "volume_vs_count.png", "location.png"] + (
        ["indications.png"] if args.indications else []
    )
    check_outputs([out / n for n in names], _inputs(args))
    with atomic_outputs(*(out / n for n in names)) as tmp:
        figures.size_distribution(tmp[0], lesions)
        figures.volume_against_count(tmp[1], studies)
        figures.locations(tmp[2], lesions)
        if args.indications:
            figures.indication_frequencies(tmp[3], _read_tsv(args.indications), MODALITIES)
    return {n: out / n for n in names}


def run_dataset_description(args: argparse.Namespace) -> dict:
    from .io.writers import atomic_path, write_json

    description = {
        "Name": "brainmets: brain-metastasis lesion features, locations and Table 1 indications",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "brainmets",
                "Version": __version__,
                "Description": "per-lesion and per-study features of brain metastases from segmentation label "
                "maps, anatomical location and the review's Table 1 indications (research use only)",
            }
        ],
        "HowToAcknowledge": "Research use only: not a medical device; indications are not treatment recommendations.",
    }
    with atomic_path(args.out) as tmp:
        write_json(tmp, description)
    return {"json": args.out}


def _flat(exc: BaseException) -> str:
    """An error's message on one line (YAML parsers, for one, write several)."""
    return " ".join(str(exc).split())


def _one_line(exc: BaseException, args: argparse.Namespace) -> str:
    if isinstance(exc, BrainmetsError):
        return _flat(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename or getattr(args, 'segmentation', '')}: {exc.strerror or exc}"
    target = getattr(args, "segmentation", None) or getattr(args, "features", "")
    return f"internal error while processing {target}: {type(exc).__name__}: {exc}"


def _run_with_status(args: argparse.Namespace) -> int:
    """Run a per-study command; record ok or failed (and why) in --status-json, so one bad study does not
    stop a cohort. The message also goes to stderr (the job's log), with the traceback for internal errors."""
    from .io.writers import atomic_path, check_outputs, write_json

    try:  # a status document that would overwrite an input, or is a folder: nothing is run or written
        check_outputs([args.status_json], _inputs(args))
    except ConfigError as exc:
        print(f"brainmets: error: {_flat(exc)}", file=sys.stderr)
        return EXIT_USAGE
    start = time.perf_counter()
    error = None
    try:
        outputs = args.func(args)
    except Exception as exc:
        outputs = None
        error = _one_line(exc, args)
        print(f"brainmets: error: {error}", file=sys.stderr)
        if not isinstance(exc, BrainmetsError | OSError):
            import traceback

            traceback.print_exc(file=sys.stderr)
        if getattr(args, "out_figure", None):
            from .report.figures import failure_figure

            with atomic_path(args.out_figure) as tmp:
                failure_figure(tmp, f"sub-{args.subject}" if args.subject else "study", f"failed: {error}")
    status = {
        "subject": args.subject,
        "session": args.session,
        "step": args.command,
        "status": "failed" if error else "ok",
        "error": error,
        "outputs": {k: str(v) for k, v in outputs.items()} if isinstance(outputs, dict) else {},
        "seconds": round(time.perf_counter() - start, 3),
        "brainmets_version": __version__,
    }
    try:
        with atomic_path(args.status_json) as tmp:
            write_json(tmp, status)
    except OSError as exc:
        print(f"brainmets: error: {exc.filename}: cannot write the status document ({exc.strerror})", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0


BATCH_COMMANDS = ("features", "indicate")


LOG_FORMAT = "brainmets: %(levelname)s: %(message)s"


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)


@contextlib.contextmanager
def _logging_to(stream, verbose: bool):
    """Send every log record to `stream` (one study's log) for the duration, then restore the handlers."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def _parse_jobs(text: str) -> tuple[str, list[str], list[dict]]:
    """The --jobs-json document of `batch`: (command, common options, studies)."""

    def strings(value) -> bool:
        return isinstance(value, list) and all(isinstance(a, str) for a in value)

    try:
        jobs = json.loads(text)
        command, common, studies = jobs["command"], jobs.get("common", []), jobs["studies"]
        if command not in BATCH_COMMANDS:
            raise ValueError(f"command must be one of {', '.join(BATCH_COMMANDS)}, not {command!r}")
        if not strings(common):
            raise ValueError("'common' must be a list of strings")
        if not isinstance(studies, list):
            raise ValueError("'studies' must be a list")
        for study in studies:
            if not strings(study.get("args")):
                raise ValueError("each study needs 'args', a list of strings")
            if not isinstance(study.get("log", ""), str):
                raise ValueError("a study's 'log' must be a path")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ConfigError(f"--jobs-json: {_flat(exc) or type(exc).__name__}") from None
    return command, common, studies


def run_batch(parser: argparse.ArgumentParser, jobs_json: str) -> int:
    """Run one command per study in this process, each study's stderr and log records in its own log file.
    Returns 1 when a study's command did not complete (its log says why), else 0."""
    import io
    import warnings

    from .io.writers import check_outputs

    command, common, studies = _parse_jobs(jobs_json)
    start = time.perf_counter()
    incomplete = []
    for study in studies:
        argv, log_path = [command, *study["args"], *common], study.get("log")
        usage = io.StringIO()  # argparse's complaint, for the study's log
        try:
            with contextlib.redirect_stderr(usage):
                args, code = parser.parse_args(argv), None
        except SystemExit as exc:
            args, code = None, exc.code if isinstance(exc.code, int) else EXIT_USAGE
        try:
            if log_path and args is not None:
                check_outputs([log_path], _inputs(args))
            with contextlib.ExitStack() as stack:
                if log_path:
                    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                    stream = stack.enter_context(open(log_path, "w", encoding="utf-8"))
                    stack.enter_context(contextlib.redirect_stderr(stream))
                print(usage.getvalue(), end="", file=sys.stderr)
                stack.enter_context(warnings.catch_warnings())  # every study shows its own warnings
                warnings.simplefilter("default")
                if args is not None:
                    with _logging_to(sys.stderr, args.verbose):
                        code = run(args)
        except (ConfigError, OSError) as exc:  # the log itself cannot be written
            where = getattr(exc, "filename", None) or log_path
            print(f"brainmets: error: {where}: cannot write this study's log ({_flat(exc)})", file=sys.stderr)
            code = EXIT_DATA_ERROR
        if code:
            incomplete.append(log_path or " ".join(study["args"]))
    for where in incomplete:
        print(f"brainmets: error: a study did not complete (see {where})", file=sys.stderr)
    print(
        f"brainmets batch: {command}: {len(studies) - len(incomplete)} of {len(studies)} studies completed "
        f"in {time.perf_counter() - start:.1f} s (each study's outcome is in its status document and log)",
        file=sys.stderr,
    )
    return 1 if incomplete else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainmets`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(getattr(args, "verbose", False))
    if args.command == "batch":
        try:
            return run_batch(parser, args.jobs_json)
        except ConfigError as exc:
            print(f"brainmets: error: {_flat(exc)}", file=sys.stderr)
            return EXIT_USAGE
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run one parsed command; map its errors to an exit code and a one-line message."""
    if getattr(args, "status_json", None):
        return _run_with_status(args)
    try:
        args.func(args)  # returns the outputs it wrote (recorded by --status-json)
        return 0
    except ConfigError as exc:
        print(f"brainmets: error: {_flat(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except BrainmetsError as exc:
        print(f"brainmets: error: {_flat(exc)}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except OSError as exc:
        where = exc.filename or getattr(args, "segmentation", "")
        print(f"brainmets: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except Exception as exc:  # a bug: say so in one line, show the traceback with --verbose
        target = getattr(args, "segmentation", None) or ""
        print(
            f"brainmets: internal error while processing {target}: {type(exc).__name__}: {exc} "
            "(rerun with --verbose for the traceback; please report it)",
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        return EXIT_DATA_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
