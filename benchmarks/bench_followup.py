#!/usr/bin/env python3
"""Follow-up of one subject: 6 sessions of 20 lesions each on the BraTS grid (240 x 240 x 155), lesions
shrinking, growing and drifting by up to 2 mm between scans, one resolving and one new per session.

Usage: python benchmarks/bench_followup.py [--out benchmarks/results/followup.json]
Times (best of 3) the three parts of `brainmets.follow_up`: measuring every session (reading and
`features`, which the follow-up shares with the features step), placing each session's lesions in the
baseline's world, and the follow-up proper (linking, tracks, growth, RANO-BM, volumetric response, facts).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from brainmets import api  # noqa: E402
from brainmets.longitudinal.followup import FollowupParameters, follow_up  # noqa: E402
from brainmets.longitudinal.timeline import read_timeline  # noqa: E402
from brainmets.longitudinal.tracking import SessionLesions  # noqa: E402
from brainmets.study import measure  # noqa: E402

SHAPE = (240, 240, 155)
SESSIONS, LESIONS = 6, 20


def write_timeline(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    centres = rng.uniform([40, 40, 30], [200, 200, 125], size=(LESIONS + SESSIONS, 3))
    radii = rng.uniform(2.5, 9, size=LESIONS + SESSIONS)
    grid = np.indices(SHAPE, dtype=np.float32)
    lines = ["subject\tsession\tdate\tsegmentation"]
    for s in range(SESSIONS):
        labels = np.zeros(SHAPE, np.uint8)
        present = [k for k in range(s, LESIONS + s)]  # one lesion resolves, one appears each session
        for k in present:
            r = radii[k] * (1 + 0.1 * np.sin(k + s))
            c = centres[k] + rng.normal(0, 0.7, 3)
            box = tuple(slice(max(int(ci - r - 1), 0), int(ci + r + 2)) for ci in c)
            d2 = sum((g[box] - ci) ** 2 for g, ci in zip(grid, c))
            labels[box][d2 <= r * r] = 3
        path = folder / f"s{s + 1}.nii.gz"
        nib.save(nib.Nifti1Image(labels, np.eye(4)), str(path))
        lines.append(f"01\t{s + 1}\t2024-{s + 1:02d}-01\t{path.name}")
    timeline = folder / "timeline.tsv"
    timeline.write_text("\n".join(lines) + "\n")
    return timeline


def best(function, repeats: int = 3):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "followup.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = read_timeline(write_timeline(Path(tmp)))
        config = api.load_config()
        params = FollowupParameters.from_config(config["followup"])
        choice = measure.reference_choice(config["anatomy"], {})
        dicom = measure.dicom_options(config["dicom"])
        measure_s, measured = best(
            lambda: [measure.measure_study(s.segmentation, config, choice, dicom, threads=1) for s in sessions]
        )
        place_s, data = best(
            lambda: [
                SessionLesions.from_measurement(m.features.lesions, m.instances, m.affine, s.transform)
                for s, m in zip(sessions, measured)
            ]
        )
        documents, affines = [m.document for m in measured], [m.affine for m in measured]
        follow_s, document = best(lambda: follow_up(sessions, documents, data, affines, params))
    result = {
        "sessions": SESSIONS,
        "lesions_per_session": [len(d["lesions"]) for d in documents],
        "shape": list(SHAPE),
        "seconds": {
            "measure_every_session": round(measure_s, 3),
            "place_lesions_in_baseline_world": round(place_s, 3),
            "follow_up_proper": round(follow_s, 3),
        },
        "tracks": len(document["tracks"]),
        "responses": [r["response"] for r in document["rano_bm"]],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
