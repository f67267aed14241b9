"""Where each lesion is: posterior fossa, brainstem, eloquent regions and the 4th ventricle, from an
anatomical reference (a subject parcellation, an atlas in the segmentation's space, or a registered template).

A reference is a set of label images in world space plus a *definition* (YAML, see
``schemas/reference.schema.yaml``) saying which labels form each region. Lesions are located by sampling the
reference images (nearest neighbour) at the world positions of their core voxel centres, so no image is
resampled as a whole and any grid, orientation or voxel size of either side is handled exactly.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial import cKDTree

from .config import RegistrationParameters, load_yaml, read_text, validate_with
from .errors import ConfigError, InputDataError
from .geometry import apply_affine
from .io import LabelMap, load_segmentation
from .io.core import DEFAULT_MAX_VOXELS
from .labels import value_mask

log = logging.getLogger(__name__)

OUTSIDE = -1  # sampled value of a point outside an image's field of view
BUILTIN_DEFINITIONS = ("freesurfer", "sri24", "posterior-fossa-mask")


@dataclass(frozen=True)
class Clause:
    """One condition on one reference image: its label is (or, negated, is not) one of ``values``."""

    image: str
    values: frozenset[int]
    negate: bool = False


Region = tuple[Clause, ...]  # every clause must hold


def _region(spec: list[dict]) -> Region:
    return tuple(
        Clause(c["image"], frozenset(c["not"]), True) if "not" in c else Clause(c["image"], frozenset(c["in"]))
        for c in spec
    )


@dataclass(frozen=True)
class ReferenceDefinition:
    """Which images make up a reference and which of their labels form each region."""

    name: str
    description: str
    images: dict[str, str | None]  # image name -> file relative to ``folder`` (None: given at run time)
    regions: dict[str, Region]
    eloquent: dict[str, Region]
    template: str | None = None
    assumptions: tuple[str, ...] = ()
    folder: Path | None = None

    @classmethod
    def load(cls, spec: str | Path, folder: str | Path | None = None) -> ReferenceDefinition:
        """A built-in definition by name (freesurfer, sri24, posterior-fossa-mask) or a YAML file.

        ``folder`` is where the definition's image files are (default: the YAML file's folder).
        """
        if str(spec) in BUILTIN_DEFINITIONS:
            text = (resources.files("brainmets") / "data" / "references" / f"{spec}.yaml").read_text(encoding="utf-8")
            source, default_folder = f"built-in reference definition {spec!r}", None
        else:
            path = Path(spec)
            try:
                text = read_text(path)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (a reference definition; built-in definitions: {', '.join(BUILTIN_DEFINITIONS)})"
                ) from None
            source, default_folder = str(path), path.parent
        try:
            data = validate_with("reference.schema.yaml", load_yaml(text), source)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})") from None
        for group in ("regions", "eloquent"):
            for region_name, clauses in data.get(group, {}).items():
                unknown = {c["image"] for c in clauses} - set(data["images"])
                if unknown:
                    raise ConfigError(f"{source}: {group}.{region_name} uses unknown image(s) {sorted(unknown)}")
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            images=dict(data["images"]),
            regions={k: _region(v) for k, v in data["regions"].items()},
            eloquent={k: _region(v) for k, v in data.get("eloquent", {}).items()},
            template=data.get("template"),
            assumptions=tuple(data.get("assumptions", [])),
            folder=Path(folder) if folder is not None else default_folder,
        )

    def image_path(self, name: str) -> Path:
        """File of one of the definition's images (relative names resolve against ``folder``)."""
        file = self.images[name] if name in self.images else name
        if file is None:
            raise ConfigError(f"reference {self.name!r}: image {name!r} must be given at run time")
        path = Path(file)
        if not path.is_absolute():
            if self.folder is None:
                raise ConfigError(f"reference {self.name!r}: give the folder of its images (--atlas-dir)")
            path = self.folder / path
        return path


@dataclass
class Reference:
    """A loaded anatomical reference: label images with world affines, and its definition."""

    definition: ReferenceDefinition
    images: dict[str, LabelMap]
    kind: str  # parcellation | posterior-fossa-mask | atlas | template
    provenance: dict[str, Any] = field(default_factory=dict)
    _points: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # region_points cache
    _trees: dict[str, cKDTree | None] = field(default_factory=dict, repr=False)  # region_tree cache

    def sample(self, world: np.ndarray) -> dict[str, np.ndarray]:
        """Label of every image at the given world points (nearest voxel); ``OUTSIDE`` beyond an image."""
        out = {}
        for name, image in self.images.items():
            ijk = np.rint(apply_affine(np.linalg.inv(image.affine), world)).astype(np.int64)
            inside = np.all((ijk >= 0) & (ijk < np.asarray(image.labels.shape)), axis=1)
            values = np.full(len(world), OUTSIDE, dtype=np.int64)
            values[inside] = image.labels[tuple(ijk[inside].T)]
            out[name] = values
        return out

    def has(self, region: str) -> bool:
        return region in self.definition.regions

    def region_points(self, region: str) -> np.ndarray:
        """World coordinates of the voxel centres forming ``region`` (on the grid of its first image)."""
        if region in self._points:
            return self._points[region]
        clauses = self.definition.regions[region]
        grid = self.images[clauses[0].image]
        ijk = np.argwhere(_mask(clauses[:1], {clauses[0].image: grid.labels}))
        world = apply_affine(grid.affine, ijk.astype(float))
        if len(clauses) > 1:
            world = world[_mask(clauses[1:], self.sample(world))]
        self._points[region] = world
        return world

    def region_tree(self, region: str) -> cKDTree | None:
        """A KD-tree of ``region_points`` (None when the region is empty), built once per reference."""
        if region not in self._trees:
            points = self.region_points(region)
            self._trees[region] = cKDTree(points) if len(points) else None
        return self._trees[region]


def _mask(region: Region, samples: dict[str, np.ndarray]) -> np.ndarray:
    """Points (of ``samples``) where every clause of ``region`` holds; points outside an image never do."""
    result = None
    for clause in region:
        values = samples[clause.image]
        hit = value_mask(values, clause.values)
        hit = (~hit & (values != OUTSIDE)) if clause.negate else hit
        result = hit if result is None else result & hit
    return result


def _load_image(path: Path, role: str, max_voxels: int) -> LabelMap:
    image = load_segmentation(path, max_voxels=max_voxels)
    image.provenance["role"] = role
    return image


def load_reference(
    kind: str,
    segmentation: LabelMap,
    definition: ReferenceDefinition,
    files: dict[str, str | Path] | None = None,
    alignment: str = "world",
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Reference:
    """Read a reference's images (``files`` fills or overrides the definition's) for one segmentation.

    ``alignment`` "world" places the images by their own affines; "voxel" ignores their headers and takes
    voxel (i, j, k) of every image to be voxel (i, j, k) of the segmentation (for files whose headers are
    known to disagree although the voxel grids match); the shapes must then be equal.
    """
    if alignment not in ("world", "voxel"):
        raise ConfigError(f"reference alignment must be 'world' or 'voxel', not {alignment!r}")
    images: dict[str, LabelMap] = {}
    for name, path in _image_paths(definition, files).items():
        image = _load_image(path, name, max_voxels)
        if alignment == "voxel":
            if image.shape != segmentation.shape:
                raise InputDataError(
                    path,
                    f"voxel-grid alignment needs the segmentation's grid {segmentation.shape} "
                    f"({segmentation.source}), but this image has {image.shape}",
                )
            image.affine = segmentation.affine
        images[name] = image
    return Reference(
        definition=definition,
        images=images,
        kind=kind,
        provenance={
            "kind": kind,
            "definition": definition.name,
            "alignment": alignment,
            "images": {
                name: {"sha256": im.provenance.get("input_sha256"), "shape": list(im.shape)}
                for name, im in images.items()
            },
            "assumptions": list(definition.assumptions),
        },
    )


@dataclass(frozen=True)
class LocationParameters:
    """Thresholds turning overlaps into categories (all fractions of the lesion's core voxels)."""

    mixed_margin: float = 0.1  # <= margin in the posterior fossa: supratentorial; >= 1 - margin: infratentorial
    brainstem_min_fraction: float = 0.05
    eloquent_min_fraction: float = 0.05
    max_outside_brain_fraction: float = 0.5  # beyond this the reference is taken not to line up

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> LocationParameters:
        return cls(**{k: float(section[k]) for k in cls.__dataclass_fields__ if k in section})


NO_REFERENCE = "no anatomical reference was configured (parcellation, atlas or template)"


def empty_location() -> dict[str, Any]:
    """Per-lesion location fields when they cannot be determined (why: see ``missing_notes``)."""
    return {
        "posterior_fossa_fraction": None,
        "location": None,
        "brainstem_fraction": None,
        "brainstem_involved": None,
        "eloquent_regions": None,
        "distance_to_fourth_ventricle_mm": None,
    }


def locate(
    lesion_points: list[np.ndarray],
    reference: Reference,
    params: LocationParameters,
    sources: str,
    distance_points: list[np.ndarray | None] | None = None,
) -> list[dict[str, Any]]:
    """Location fields of each lesion, given the world coordinates of its core voxel centres (and those of
    them that can be its nearest to the 4th ventricle, when known: see ``ventricle_candidates``).

    Raises :class:`InputDataError` (naming ``sources``) when lesion voxels fall outside the reference's
    field of view, or when too many of them fall outside its brain (the two do not line up).
    """
    samples = [reference.sample(points) for points in lesion_points]
    outside = sum(int(np.any([s[n] == OUTSIDE for n in s], axis=0).sum()) for s in samples)
    total = sum(len(p) for p in lesion_points)
    if outside:
        raise InputDataError(
            sources,
            f"the anatomical reference does not cover the lesions: {outside} of {total} lesion voxels fall "
            "outside its field of view (wrong file, or headers that do not line up: see --reference-alignment)",
        )
    if reference.has("brain") and total:
        out_of_brain = sum(int((~_mask(reference.definition.regions["brain"], s)).sum()) for s in samples)
        if out_of_brain > params.max_outside_brain_fraction * total:
            raise InputDataError(
                sources,
                f"the anatomical reference does not line up with the segmentation: {out_of_brain} of {total} "
                f"lesion voxels ({out_of_brain / total:.0%}) fall outside its brain (if the voxel grids match "
                "although the headers disagree, use --reference-alignment voxel)",
            )
    ventricle = _ventricle_tree(reference)
    return [
        _location_row(points, sample, None, reference, params, ventricle, nearer)
        for points, sample, nearer in zip(
            lesion_points, samples, distance_points or [None] * len(lesion_points), strict=True
        )
    ]


def _ventricle_tree(reference: Reference) -> cKDTree | None:
    return reference.region_tree("fourth_ventricle") if reference.has("fourth_ventricle") else None


#: An interior voxel is kept as a candidate when a ventricle point lies within its cell widened by this
#: fraction of a voxel: far more than rounding, or the cross terms of an affine sheared by up to
#: ``MAX_CANDIDATE_SHEAR_DEG``, can move a distance (see ``ventricle_candidates``).
CELL_MARGIN = 0.01
MAX_CANDIDATE_SHEAR_DEG = 1e-6


def ventricle_candidates(mask: np.ndarray, affine: np.ndarray, reference: Reference) -> np.ndarray | None:
    """The voxels of ``mask`` (a lesion's crop, ``affine`` its grid) that can be the lesion's nearest to the
    4th ventricle: its boundary voxels (a face neighbour outside the lesion) and the interior voxels whose
    own cell (widened by ``CELL_MARGIN``) holds a ventricle point. On a grid with orthogonal axes a step to
    the face neighbour towards a point outside an interior voxel's widened cell shortens the distance to it
    by at least 2 x CELL_MARGIN x that axis's spacing squared, so no other voxel can be the nearest. None
    where that does not hold (a sheared grid) or there is no 4th ventricle: then every voxel counts."""
    from .geometry import axis_shear_deg

    tree = _ventricle_tree(reference)
    if tree is None or axis_shear_deg(affine) > MAX_CANDIDATE_SHEAR_DEG:
        return None
    p = np.pad(mask, 1)  # six shifted views: several times faster than ndimage.binary_erosion on such crops
    interior = mask & p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1] & p[1:-1, 2:, 1:-1]
    interior &= p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:]
    candidates = mask & ~interior
    index = apply_affine(np.linalg.inv(affine), tree.data)  # ventricle points in the crop's voxel indices
    low, high = (np.floor(index + 0.5 + m).astype(np.int64) for m in (-CELL_MARGIN, CELL_MARGIN))
    for corner in np.ndindex(2, 2, 2):  # every cell the widened cells around a point reach (mostly one)
        ijk = np.where(np.array(corner, bool), high, low)
        ijk = ijk[np.all((ijk >= 0) & (ijk < mask.shape), axis=1)]
        held = tuple(ijk[interior[tuple(ijk.T)]].T)
        candidates[held] = True
    return candidates


def _location_row(
    points: np.ndarray,
    sample: dict[str, np.ndarray],
    counted: np.ndarray | None,
    reference: Reference,
    params: LocationParameters,
    ventricle: cKDTree | None,
    distance_points: np.ndarray | None = None,
) -> dict[str, Any]:
    """Location fields from the reference's labels at ``points`` (fractions over the ``counted`` points,
    default all); the 4th-ventricle distance is measured from ``distance_points`` (default ``points``)."""
    n = len(points) if counted is None else int(counted.sum())
    row = empty_location()
    if n == 0:
        return row

    def fraction(region: Region) -> float:
        hits = _mask(region, sample)
        return float((hits if counted is None else hits & counted).sum()) / n

    pf = fraction(reference.definition.regions["posterior_fossa"])
    row["posterior_fossa_fraction"] = pf
    if pf <= params.mixed_margin:
        row["location"] = "supratentorial"
    elif pf >= 1 - params.mixed_margin:
        row["location"] = "infratentorial"
    else:
        row["location"] = "mixed"
    if reference.has("brainstem"):
        bs = fraction(reference.definition.regions["brainstem"])
        row["brainstem_fraction"] = bs
        row["brainstem_involved"] = bool(bs > 0 and bs >= params.brainstem_min_fraction)
    if reference.definition.eloquent:
        row["eloquent_regions"] = sorted(
            name
            for name, region in reference.definition.eloquent.items()
            if (share := fraction(region)) and share >= params.eloquent_min_fraction
        )
    if ventricle is not None:
        source = points if distance_points is None else distance_points
        row["distance_to_fourth_ventricle_mm"] = float(ventricle.query(source, k=1)[0].min())
    return row


def locate_cavity(
    cavity_points: np.ndarray, rim_points: np.ndarray, reference: Reference, params: LocationParameters
) -> dict[str, Any]:
    """Location fields of a resection cavity, from the reference's labels at its voxels that lie inside the
    reference's brain. A parcellation of the operated brain often leaves the cavity unlabelled (a hole):
    when more of its voxels than ``max_outside_brain_fraction`` fall outside the brain, the tissue of its
    rim (``rim_points``, ``features.cavity_rim_mm``) is read too. Nothing inside the brain: all fields null."""

    def inside(points: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        sample = reference.sample(points)
        counted = ~np.any([values == OUTSIDE for values in sample.values()], axis=0)
        if reference.has("brain"):
            counted &= _mask(reference.definition.regions["brain"], sample)
        return sample, counted

    ventricle = _ventricle_tree(reference)
    sample, counted = inside(cavity_points)
    if counted.mean() >= 1 - params.max_outside_brain_fraction:
        return _location_row(cavity_points, sample, counted, reference, params, ventricle)
    points = np.concatenate([cavity_points, rim_points])
    sample, counted = inside(points)
    return _location_row(points, sample, counted, reference, params, ventricle, cavity_points)


def missing_notes(reference: Reference | None) -> list[str]:
    """Why location fields are null for this study."""
    if reference is None:
        return [NO_REFERENCE]
    notes = []
    name = reference.definition.name
    if not reference.has("brainstem"):
        notes.append(f"reference {name!r} has no brainstem label: brainstem_fraction and brainstem_involved are null")
    if not reference.has("fourth_ventricle"):
        notes.append(f"reference {name!r} has no 4th-ventricle label: distance_to_fourth_ventricle_mm is null")
    if not reference.definition.eloquent:
        notes.append(f"reference {name!r} defines no eloquent regions: eloquent_regions is null")
    return notes


@dataclass(frozen=True)
class ReferenceChoice:
    """The anatomical reference of one study, as chosen on the command line, in the config or the sheet."""

    parcellation: str | None = None
    posterior_fossa_mask: str | None = None
    atlas: str | None = None
    atlas_dir: str | None = None
    template: str | None = None
    template_image: str | None = None
    template_labels: str | None = None
    subject_image: str | None = None
    parcellation_definition: str = "freesurfer"
    template_labels_definition: str = "freesurfer"
    alignment: str = "world"

    @property
    def kind(self) -> str | None:
        chosen = [
            kind
            for kind, given in (
                ("parcellation", self.parcellation),
                ("posterior-fossa-mask", self.posterior_fossa_mask),
                ("atlas", self.atlas),
                ("template", self.template or self.template_image or self.template_labels),
            )
            if given
        ]
        if len(chosen) > 1:
            raise ConfigError(f"choose one anatomical reference, not {' and '.join(chosen)}")
        return chosen[0] if chosen else None


def _single_runtime_image(definition: ReferenceDefinition, path: str, what: str) -> dict[str, str]:
    runtime = [name for name, file in definition.images.items() if file is None]
    if len(runtime) != 1:
        raise ConfigError(f"reference definition {definition.name!r} cannot take a single {what} image")
    return {runtime[0]: path}


def build_reference(
    choice: ReferenceChoice,
    segmentation: LabelMap,
    registration: RegistrationParameters | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Reference | None:
    """Load (and, for a template, register) the chosen reference; None when none was chosen. Images whose
    headers claim more than ``max_voxels`` voxels are refused before they are read."""
    kind = choice.kind
    if kind is None:
        return None
    if kind == "parcellation":
        definition = ReferenceDefinition.load(choice.parcellation_definition)
        files = _single_runtime_image(definition, choice.parcellation, "parcellation")
    elif kind == "posterior-fossa-mask":
        definition = ReferenceDefinition.load("posterior-fossa-mask")
        files = _single_runtime_image(definition, choice.posterior_fossa_mask, "mask")
    elif kind == "atlas":
        definition, files = ReferenceDefinition.load(choice.atlas, folder=choice.atlas_dir), {}
    else:
        return _registered_template(choice, segmentation, registration, max_voxels)
    identities = _file_identities(definition, files)
    if choice.alignment != "world" or identities is None:  # per-segmentation affines, or folders: not shared
        return load_reference(kind, segmentation, definition, files, choice.alignment, max_voxels)
    key = (kind, repr(definition), max_voxels, *identities)  # the definition's every region, not only its name
    with _LOADED_LOCK:
        shared = _LOADED.get(key)
        if shared is None:
            _LOADED.clear()  # one at a time: a batch either shares one reference or gains nothing from keeping it
            shared = _LOADED[key] = load_reference(kind, segmentation, definition, files, "world", max_voxels)
            for image in shared.images.values():
                image.labels.flags.writeable = False  # shared by the studies of a batch
    # the images, region points and trees shared; the provenance and the dict of images each study's own
    return replace(shared, images=dict(shared.images), provenance=copy.deepcopy(shared.provenance))


#: The reference last read from files, by the files' identity (path, inode, size, modification and change
#: times) and its definition: a batch whose studies share one parcellation or atlas reads it, and finds its
#: region points, once.
_LOADED: dict[tuple, Reference] = {}
_LOADED_LOCK = threading.Lock()


def _image_paths(definition: ReferenceDefinition, files: dict[str, str | Path] | None) -> dict[str, Path]:
    """The file of each of the definition's images (``files`` fills or overrides the definition's)."""
    files = dict(files or {})
    return {name: Path(files[name]) if name in files else definition.image_path(name) for name in definition.images}


def _file_identities(definition: ReferenceDefinition, files: dict[str, str | Path]) -> list[tuple] | None:
    """What identifies each image file's content without reading it; None when one is a folder (a DICOM
    series, whose files may change without the folder's times) or cannot be read (loading reports it)."""
    identities = []
    for name, path in _image_paths(definition, files).items():
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        identities.append((name, str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns,
                           stat.st_ctime_ns))  # fmt: skip
    return identities


def _registered_template(
    choice: ReferenceChoice, segmentation: LabelMap, params: RegistrationParameters | None, max_voxels: int
) -> Reference:
    from .registration import register, resample_onto  # SimpleITK registration, loaded only when used

    if not choice.subject_image:
        raise ConfigError("a template reference needs the subject's T1/T1c image (--subject-image)")
    if choice.template:
        definition = ReferenceDefinition.load(choice.template, folder=choice.atlas_dir)
        if not definition.template:
            raise ConfigError(f"reference definition {definition.name!r} names no template image")
        template_image, files = definition.image_path(definition.template), {}
    else:
        if not (choice.template_image and choice.template_labels):
            raise ConfigError("give both --template-image and --template-labels (or --template)")
        definition = ReferenceDefinition.load(choice.template_labels_definition)
        template_image = Path(choice.template_image)
        files = _single_runtime_image(definition, choice.template_labels, "template-labels")
    in_template = load_reference("template", segmentation, definition, files, "world", max_voxels)
    result = register(Path(choice.subject_image), template_image, params or RegistrationParameters(), max_voxels)
    reference = Reference(
        definition=definition,
        images={
            name: resample_onto(image, segmentation, result.transform) for name, image in in_template.images.items()
        },
        kind="template",
        provenance={**in_template.provenance, "registration": result.quality},
    )
    return reference
