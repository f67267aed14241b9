"""``brainmets dataset-description``: what makes a results folder a BIDS-Derivatives dataset: its
``dataset_description.json`` and, on request, its ``.bidsignore`` and ``README.md``."""

from __future__ import annotations

import argparse

from brainmets._version import __version__
from brainmets.errors import ConfigError

#: Files of a results folder that BIDS has no name for (the validator is told to pass over them).
BIDSIGNORE = """# brainmets outputs that are not BIDS files (BIDS has no suffix for them); see README.md
/group
/logs
*_features.json
*_features.tsv
*_overlay.png
*_viewer.html
*_status.json
*_indications.json
*_desc-followup.json
*_spider.png
*_comparison.json
*_desc-lesions_seg.dcm
*_desc-lesions_rtstruct.dcm
*_desc-lesions_seg_series/
*_desc-lesions_rtstruct_series/
"""

README = """# brainmets results

Brain-metastasis lesion features, locations and treatment indications made by brainmets {version} from
segmentation label maps, as a BIDS-Derivatives dataset (`dataset_description.json`). Research use only:
brainmets is not a medical device and its indications are not treatment recommendations.

Per study, in `sub-<label>/[ses-<label>/]anat/`:

- `*_desc-lesions_dseg.nii.gz`: the lesion instance map (each lesion's core voxels carry its lesion_id), with
  its label table `*_desc-lesions_dseg.tsv` and sidecar `*_desc-lesions_dseg.json`;
- `*_desc-brainmets_features.json`: the study's features document (study summary, lesions, edema-only
  components, resection cavities, provenance);
- `*_desc-lesions_features.tsv`: one row per lesion, with its data dictionary (`.json`);
- `*_desc-brainmets_indications.json`: what the review's Table 1 supports, every rule with its evidence;
- `*_desc-brainmets_status.json`: whether the study was processed, or why it failed;
- `*_desc-lesions_overlay.png`: the study's picture;
- `*_desc-lesions_viewer.html`: the study's lesion viewer (open it in a browser: one self-contained page);
- `*_desc-brainmets_comparison.json` (when the studies sheet names a prediction): the prediction compared with
  the segmentation, and its status document.

Per followed subject (two or more dated sessions), in `sub-<label>/`: `*_desc-followup.json` (lesion tracks,
growth, RANO-BM and volumetric responses, the Table 1 facts that need time), its status document and its
spider plot (`*_desc-followup_spider.png`).

`group/` holds the cohort tables (lesions, studies, indications, status, lesion_tracks, responses: TSV keyed
by participant_id and session_id, with data dictionaries, and Parquet) and figures; `logs/` one log per job. Numbers keep
{digits} significant digits. `.bidsignore` lists the files BIDS has no name for.

How to cite: {acknowledge}
"""


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    desc = sub.add_parser(
        "dataset-description",
        parents=parents,
        help="write the BIDS-Derivatives dataset_description.json (and .bidsignore, README) of a results folder",
    )
    desc.add_argument("--out", required=True, metavar="JSON", help="the dataset_description.json to write")
    desc.add_argument("--bidsignore", metavar="PATH", help="also write the results' .bidsignore here")
    desc.add_argument("--readme", metavar="PATH", help="also write the results' README.md here")
    desc.add_argument(
        "--source-dataset",
        action="append",
        default=[],
        metavar="URL_OR_DOI",
        help="a dataset the results were made from (a URL, or doi:...; repeatable): SourceDatasets",
    )
    desc.set_defaults(func=run)


def _source(text: str) -> dict[str, str]:
    """One SourceDatasets entry: ``doi:...`` is a DOI, anything else with a scheme a URL."""
    if text.lower().startswith("doi:") and text[4:].strip():
        return {"DOI": text}
    if text.lower().startswith("doi:") or "://" not in text or text.endswith("://"):
        raise ConfigError(f"--source-dataset {text!r}: give a URL (scheme://...) or a DOI (doi:...)")
    return {"URL": text}


def run(args: argparse.Namespace) -> dict:
    from brainmets.citation import CODE_URL, how_to_acknowledge
    from brainmets.io.writers import SIGNIFICANT_DIGITS, atomic_outputs, check_outputs, write_json

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
                "CodeURL": CODE_URL,
            }
        ],
        "HowToAcknowledge": how_to_acknowledge(),
    }
    sources = [_source(s) for s in dict.fromkeys(args.source_dataset)]
    if sources:
        description["SourceDatasets"] = sources
    outputs = {"json": args.out}
    if args.bidsignore:
        outputs["bidsignore"] = args.bidsignore
    if args.readme:
        outputs["readme"] = args.readme
    check_outputs(list(outputs.values()), [])
    readme = README.format(version=__version__, digits=SIGNIFICANT_DIGITS, acknowledge=how_to_acknowledge())
    with atomic_outputs(*outputs.values()) as tmp_paths:
        tmp = dict(zip(outputs, tmp_paths))
        write_json(tmp["json"], description)
        if "bidsignore" in tmp:
            tmp["bidsignore"].write_text(BIDSIGNORE, encoding="utf-8")
        if "readme" in tmp:
            tmp["readme"].write_text(readme, encoding="utf-8")
    return outputs
