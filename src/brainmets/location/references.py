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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial import cKDTree

from brainmets.config import load_yaml, read_text, validate_with
from brainmets.errors import ConfigError, InputDataError
from brainmets.io import LabelMap, load_segmentation
from brainmets.io.core import DEFAULT_MAX_VOXELS
from brainmets.location.parameters import RegistrationParameters
from brainmets.measurement.geometry import apply_affine
from brainmets.schemes import value_mask

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
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False)  # what is measured on it, by its parameters

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

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """What ``compute`` measures on this reference, computed once per ``key`` (shared by the studies of a
        batch that share the reference)."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def has(self, region: str) -> bool:
        return region in self.definition.regions

    def region_points(self, region: str) -> np.ndarray:
        """World coordinates of the voxel centres forming ``region`` (on the grid of its first image)."""
        if region in self._points:
            return self._points[region]
        clauses = self.definition.regions[region]
        grid = self.images[clauses[0].image]
        order = [int(a) for a in np.argsort(np.abs(grid.labels.strides))[::-1]]  # read in memory order: 10x faster
        mask = region_mask(clauses[:1], {clauses[0].image: grid.labels.transpose(order)})
        ijk = np.empty((int(np.count_nonzero(mask)), 3), dtype=np.int64)
        ijk[:, order] = np.argwhere(mask)
        world = apply_affine(grid.affine, ijk.astype(float))
        if len(clauses) > 1:
            world = world[region_mask(clauses[1:], self.sample(world))]
        self._points[region] = world
        return world

    def region_tree(self, region: str) -> cKDTree | None:
        """A KD-tree of ``region_points`` (None when the region is empty), built once per reference."""
        if region not in self._trees:
            points = self.region_points(region)
            self._trees[region] = cKDTree(points) if len(points) else None
        return self._trees[region]


def region_mask(region: Region, samples: dict[str, np.ndarray]) -> np.ndarray:
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
    from brainmets.location.registration import register, resample_onto

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
