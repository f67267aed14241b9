"""``brainmets features``: measure one segmentation (through :func:`brainmets.api.measure_study`) and write
the requested outputs."""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path

from brainmets.cli.common import (
    check_identity,
    command_config,
    command_inputs,
    config_options,
    finite_number,
    identity_options,
    parent_parser,
    reference_options,
    scheme_options,
    status_options,
    study_label,
    summarize,
    threads_options,
)
from brainmets.display import amount, count
from brainmets.errors import ConfigError

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

#: Options naming the study's anatomical reference (at most one kind).
ANATOMY_OPTIONS = ("parcellation", "posterior_fossa_mask", "atlas", "template", "template_image", "template_labels")


#: The sections of `features --help`.
OUTPUTS = "outputs (at least one)"
IDENTITY = "study identity (recorded in the outputs)"
PARAMETERS = "parameters (defaults: see README; command-line values override --config)"
ANATOMY = "anatomical reference (one of them; without one, location fields are null and say why)"
DICOM = "DICOM inputs (SEG, RTSTRUCT, label series; see README, DICOM)"


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    segmentation = parent_parser()
    segmentation.add_argument(
        "segmentation",
        metavar="SEG",
        help="label map: NIfTI (.nii, .nii.gz), NRRD, MetaImage, or DICOM (SEG, RTSTRUCT or a label series: "
        "a file or a folder)",
    )
    outputs = parent_parser()
    out = outputs.add_argument_group(OUTPUTS)
    out.add_argument(
        "--out-json", metavar="PATH", help="the JSON document: study, lesions, edema_only_components, provenance"
    )
    out.add_argument(
        "--out-tsv", metavar="PATH", help="one row per lesion (TSV); its data dictionary is written beside it as .json"
    )
    out.add_argument(
        "--out-instances",
        metavar="PATH",
        help="lesion instance label map (NIfTI): core voxels carry their lesion_id; a BIDS name (*_dseg.nii.gz) "
        "also gets its label table (*_dseg.tsv) and sidecar (*_dseg.json)",
    )
    out.add_argument(
        "--out-figure",
        metavar="PNG",
        help="each lesion's axial slice of its RANO-BM longest diameter: calipers, outlines, lesion ids, legend, "
        "scale bar and orientation drawn",
    )
    out.add_argument(
        "--out-viewer",
        metavar="HTML",
        help="a self-contained page to browse the study in three planes (NiiVue) beside its lesion table: a row "
        "goes to the lesion and shows its calipers (no network needed; --image as the background)",
    )
    out.add_argument(
        "--image",
        metavar="FILE",
        help="background of --out-figure and --out-viewer (e.g. the T1c); default: the label map",
    )
    out.add_argument(
        "--figure-max-panels",
        type=_panel_count,
        default=12,
        metavar="N",
        help="lesions drawn in --out-figure, largest first (1-48; default 12); a tile counts the others",
    )
    out_dir = parent_parser()
    out_dir.add_argument_group(OUTPUTS).add_argument(
        "--out-dir",
        metavar="DIR",
        help="write the JSON, the TSV and the instance map under DIR with BIDS-Derivatives names "
        "(<base>_desc-brainmets_features.json, <base>_desc-lesions_features.tsv/.json, "
        "<base>_desc-lesions_dseg.nii.gz/.tsv/.json)",
    )
    parameters = parent_parser()
    par = parameters.add_argument_group(PARAMETERS)
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
    anatomy = parent_parser()
    ana = anatomy.add_argument_group(ANATOMY)
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
    dicom = parent_parser()
    dcm = dicom.add_argument_group(DICOM)
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
    feat = sub.add_parser(
        "features",
        parents=[
            *parents,
            segmentation,
            outputs,
            status_options(
                "always write a status document (ok, or failed and why) and exit 0 on a bad study, as the workflow "
                "does",
                group=OUTPUTS,
            ),
            out_dir,
            identity_options(group=IDENTITY),
            config_options(
                "config file; its 'features' and 'anatomy' sections set the parameters",
                "the same as a JSON string (after --config; the workflow passes this)",
                group=PARAMETERS,
            ),
            scheme_options(
                "label scheme: auto (default: brats-mets-2023, but a map of only 0 and 1 is binary), brats-mets-2023, "
                "brats-2021, brats-2015, binary, or a custom mapping as --custom-labels takes",
                group=PARAMETERS,
            ),
            parameters,
            reference_options(
                {
                    "parcellation": "FreeSurfer/SynthSeg label map of the same subject (any grid)",
                    "posterior_fossa_mask": "binary posterior-fossa mask in the segmentation's space",
                    "atlas": "atlas in the segmentation's space: built-in definition (sri24) or a YAML file",
                    "atlas_dir": "folder of the atlas's (or template's) images",
                },
                metavars={"parcellation": "FILE", "posterior_fossa_mask": "FILE", "atlas": "DEF", "atlas_dir": "DIR"},
                parcellation_definition="how to read --parcellation: a built-in definition (default freesurfer) or a "
                "YAML file",
                group=ANATOMY,
            ),
            anatomy,
            dicom,
            threads_options(
                "threads measuring lesions (default: the CPUs this process may use, at most 4; results do not depend "
                "on it)"
            ),
        ],
        help="measure every lesion of one segmentation",
        description="Measure every lesion of one segmentation label map and summarise the study.",
    )
    feat.set_defaults(func=run, outputs=output_paths)


def _feature_section(args: argparse.Namespace, config: dict) -> dict:
    """The ``features`` config section: --config first, then explicit options on top."""
    section = copy.deepcopy(config["features"])
    if args.custom_labels:
        if args.scheme:
            raise ConfigError("give either --scheme or --custom-labels, not both")
        from brainmets.errors import LabelSchemeError
        from brainmets.schemes import parse_custom_labels

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
    if isinstance(section.get("label_scheme"), str):  # a name, or "enhancing=3;necrotic=1" as the sheet has
        from brainmets.errors import LabelSchemeError
        from brainmets.schemes import scheme_setting

        try:
            section["label_scheme"] = scheme_setting(section["label_scheme"])
        except LabelSchemeError as exc:
            raise ConfigError(f"--scheme: {exc}") from None
    return section


def _dicom_section(args: argparse.Namespace, config: dict) -> dict:
    """How DICOM segments map to roles: the config's ``dicom`` section, --dicom-options, then the options."""
    from brainmets.config import read_config_file, validate_config

    section = dict(config["dicom"])
    if args.dicom_options:
        extra = read_config_file(args.dicom_options)
        if set(extra) != {"dicom"}:
            raise ConfigError(f"{args.dicom_options}: expected a mapping with one key, 'dicom'")
        section.update(validate_config(extra, args.dicom_options)["dicom"])
    if args.fractional_threshold is not None:
        section["fractional_threshold"] = args.fractional_threshold
        section = validate_config({"dicom": section}, "--fractional-threshold")["dicom"]
    return section


SEG_SUFFIX = re.compile(r"(\.nii\.gz|\.nii|\.nrrd|\.nhdr|\.mha|\.mhd|\.dcm)$", re.IGNORECASE)


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """The files a successful run writes (the requested outputs and what goes beside them); refuses
    duplicates, folders, and any output that is an input."""
    from brainmets.identifiers import inside
    from brainmets.io import bids
    from brainmets.io.writers import check_outputs

    paths = {}
    if args.out_dir:
        if args.subject:
            base = bids.study_entities(args.subject, args.session)
        else:
            base = SEG_SUFFIX.sub("", Path(args.segmentation).name)
        out_dir = Path(args.out_dir)
        paths = {
            key: inside(out_dir / bids.file_name(base, suffix), out_dir)
            for key, suffix in (("json", bids.FEATURES), ("tsv", bids.LESIONS_TSV), ("instances", bids.INSTANCES))
        }
    named = {
        key: value for key in ("json", "tsv", "instances", "figure", "viewer") if (value := getattr(args, f"out_{key}"))
    }
    paths.update({key: Path(value) for key, value in named.items()})
    if not paths:
        raise ConfigError(
            "no output requested: give --out-json, --out-tsv, --out-instances, --out-figure, --out-viewer or --out-dir"
        )
    if "tsv" in paths:
        paths["dictionary"] = paths["tsv"].with_suffix(".json")
    if "instances" in paths:
        name = paths["instances"].name
        stem = re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE)
        if stem == name or not stem:
            raise ConfigError(f"--out-instances {paths['instances']}: the instance map is NIfTI, name it <name>.nii.gz")
        if stem.endswith("_dseg"):  # a BIDS name: its label table and sidecar beside it
            paths["label_table"] = paths["instances"].with_name(stem + ".tsv")
            paths["label_sidecar"] = paths["instances"].with_name(stem + ".json")
    if "figure" in paths and not str(paths["figure"]).lower().endswith(".png"):
        raise ConfigError(f"--out-figure {paths['figure']}: the picture is a PNG, name it .png")
    if "viewer" in paths and not str(paths["viewer"]).lower().endswith(".html"):
        raise ConfigError(f"--out-viewer {paths['viewer']}: the viewer is a web page, name it .html")
    outputs = [*named.values(), *(path for key, path in paths.items() if key not in named)]  # as given: "dir/"
    check_outputs([*outputs, *([args.status_json] if args.status_json else [])], command_inputs(args))
    return paths


#: The BIDS sidecar of the lesion instance map (``*_dseg.json``, shared with its label table ``*_dseg.tsv``).
INSTANCE_SIDECAR = {
    "Description": "Lesion instance map: the voxels of each lesion's tumour core carry its lesion_id (the lesion "
    "tables' lesion_id, 1 = largest core); 0 is everything else. Made by brainmets from the segmentation.",
    "SpatialReference": "orig",  # the segmentation's own grid; the label table's index/name columns are BIDS's
}


def run(args: argparse.Namespace) -> dict[str, Path]:
    """Measure the study and write its outputs, all or nothing; returns the paths written."""
    from brainmets.fields import KEY_FIELDS, data_dictionary, keyed
    from brainmets.io.writers import atomic_outputs, write_json, write_nifti, write_tsv
    from brainmets.study import measure
    from brainmets.study.columns import LESION_FIELDS

    check_identity(args)
    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {args.threads}")
    config = command_config(args)
    config["features"] = _feature_section(args, config)
    paths = output_paths(args)
    given = {name: getattr(args, name) for name in ANATOMY_OPTIONS if getattr(args, name)}
    choice = measure.reference_choice(
        config["anatomy"],
        given,
        atlas_dir=args.atlas_dir,
        subject_image=args.subject_image,
        parcellation_definition=args.parcellation_definition,
        template_labels_definition=args.template_labels_definition,
        alignment=args.reference_alignment,
    )
    measurement = measure.measure_study(
        args.segmentation,
        config,
        choice,
        measure.dicom_options(_dicom_section(args, config), args.reference_series),
        subject=args.subject,
        session=args.session,
        threads=args.threads,
        background_image=args.image,
    )
    result = measurement.features
    keys = list(paths)
    with atomic_outputs(*paths.values()) as tmp_paths:
        tmp = dict(zip(keys, tmp_paths))
        if "json" in tmp:
            write_json(tmp["json"], result.document)
        if "tsv" in tmp:  # keyed as the cohort's lesion table is, when the study has an identity
            keys = keyed({"subject": result.study.get("subject"), "session": result.study.get("session")})
            fields = [f for f in KEY_FIELDS if keys[f.name] is not None] + LESION_FIELDS
            rows = [{**keys, **row} for row in result.lesions]
            write_tsv(tmp["tsv"], [f.name for f in fields], rows)
            write_json(tmp["dictionary"], data_dictionary(fields))
        if "instances" in tmp:
            instances = result.instances  # one byte per voxel up to 255 lesions: half the file, 7 ms less
            write_nifti(tmp["instances"], instances.astype("uint8") if result.study["lesion_count"] < 256 else instances,
                        result.affine)  # fmt: skip
        if "label_table" in tmp:
            labels = [{"index": r["lesion_id"], "name": f"lesion-{r['lesion_id']}"} for r in result.lesions]
            write_tsv(tmp["label_table"], ["index", "name"], labels)
            write_json(tmp["label_sidecar"], INSTANCE_SIDECAR)
        if "figure" in tmp or "viewer" in tmp:
            _pictures(tmp.get("figure"), tmp.get("viewer"), measurement, args)
    lesions, volume = result.study["lesion_count"], result.study["cumulative_tumor_volume_ml"]
    summarize(args, f"{study_label(args)}: {count(lesions, 'lesion')}, {amount(volume)} mL", paths)
    return paths


def _pictures(figure: Path | None, viewer: Path | None, measurement, args: argparse.Namespace) -> None:
    """The study figure and the viewer page, on the image (read once) when one is given."""
    from brainmets.figures.study_picture import lesion_panel_pngs, study_figure
    from brainmets.figures.viewer import viewer_page
    from brainmets.io.images import image_on_grid

    label_map, result, params = measurement.label_map, measurement.features, measurement.parameters
    image = image_on_grid(args.image, label_map.affine, label_map.shape, params.max_voxels) if args.image else None
    name = " ".join(
        x for x in (f"sub-{args.subject}" if args.subject else "", f"ses-{args.session}" if args.session else "") if x
    )
    title = f"{name or Path(args.segmentation).name}: {count(result.study['lesion_count'], 'lesion')}"
    drawn = (label_map.labels, label_map.affine, params.scheme, result.lesions, result.instances, image)
    if figure is not None:
        study_figure(figure, *drawn, title=title + ("" if args.image else " (no image given: drawn on the label map)"),
                     document=result.document, max_panels=args.figure_max_panels)  # fmt: skip
    if viewer is not None:
        viewer_page(viewer, *drawn, title=title, panels=lesion_panel_pngs(*drawn, document=result.document))


def _panel_count(text: str) -> int:
    """A --figure-max-panels value: a whole number from 1 to 48."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 48:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 48")
    return value
