"""Lesions followed over time: session-to-session links in world space, and stable track ids.

Two lesions of consecutive sessions are linked when their cores overlap (voxel centres within the link
tolerance plus half of each grid's largest voxel size, so touching voxels of different grids count); lesions
left unlinked are then matched one-to-one by centroid distance within a gate that grows with lesion size.
Each connected group of the link graph says what happened: persisting (1:1), new (0:1), resolved (1:0),
merged (n:1), split (1:n); a new lesion within the gate of a track that resolved at any earlier session is
that track reappearing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from brainmets.measurement.geometry import apply_affine


@dataclass(frozen=True)
class TrackingParameters:
    """The config's ``followup`` matching settings."""

    link_tolerance_mm: float = 2.0
    match_gate_mm: float = 10.0
    match_gate_diameter_factor: float = 1.0

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> TrackingParameters:
        return cls(**{k: float(section[k]) for k in cls.__dataclass_fields__ if k in section})


@dataclass
class SessionLesions:
    """One session's lesions in the baseline's world (mm): core voxel centres, centroids, sizes."""

    ids: list[int]
    points: dict[int, np.ndarray]
    centroids: dict[int, np.ndarray]
    diameters: dict[int, float]  # equivalent-sphere diameter, mm
    volumes: dict[int, float]  # mL
    half_voxel_mm: float

    @classmethod
    def from_measurement(
        cls, lesions: list[dict[str, Any]], instances: np.ndarray, affine: np.ndarray, transform: np.ndarray | None
    ) -> SessionLesions:
        """From a session's lesion rows and instance map; ``transform`` maps its world to the baseline's."""
        to_baseline = affine if transform is None else transform @ affine
        points, centroids = {}, {}
        for row in lesions:
            lid = row["lesion_id"]
            box = tuple(slice(row[f"bbox_{a}_min"], row[f"bbox_{a}_max"] + 1) for a in "ijk")
            ijk = np.argwhere(instances[box] == lid) + [s.start for s in box]
            points[lid] = apply_affine(to_baseline, ijk.astype(float))
            centroid = np.array([row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]], dtype=float)
            centroids[lid] = centroid if transform is None else apply_affine(transform, centroid[None])[0]
        return cls(
            ids=[row["lesion_id"] for row in lesions],
            points=points,
            centroids=centroids,
            diameters={row["lesion_id"]: float(row["equivalent_sphere_diameter_mm"]) for row in lesions},
            volumes={row["lesion_id"]: float(row["volume_ml"]) for row in lesions},
            half_voxel_mm=0.5 * float(np.linalg.norm(affine[:3, :3], axis=0).max()),
        )


def _overlaps(a: SessionLesions, b: SessionLesions, tolerance_mm: float) -> set[tuple[int, int]]:
    """Pairs (a id, b id) whose cores come within the link distance, by nearest voxel centres both ways."""
    if not a.ids or not b.ids:
        return set()
    reach = tolerance_mm + a.half_voxel_mm + b.half_voxel_mm
    pairs = set()
    for first, second, flip in ((a, b, False), (b, a, True)):
        labels = np.concatenate([np.full(len(first.points[i]), i) for i in first.ids])
        tree = cKDTree(np.concatenate([first.points[i] for i in first.ids]))
        for j in second.ids:
            distance, index = tree.query(second.points[j], distance_upper_bound=reach)
            for i in np.unique(labels[index[np.isfinite(distance)]]):
                pairs.add((j, int(i)) if flip else (int(i), j))
    return pairs


def link(a: SessionLesions, b: SessionLesions, params: TrackingParameters) -> set[tuple[int, int]]:
    """Links between two sessions' lesions: overlap, then one-to-one centroid matching within the gate."""
    pairs = _overlaps(a, b, params.link_tolerance_mm)
    free_a = [i for i in a.ids if not any(p[0] == i for p in pairs)]
    free_b = [j for j in b.ids if not any(p[1] == j for p in pairs)]
    if free_a and free_b:
        distance = np.array([[np.linalg.norm(a.centroids[i] - b.centroids[j]) for j in free_b] for i in free_a])
        gate = np.array([[gate_mm(params, a.diameters[i], b.diameters[j]) for j in free_b] for i in free_a])
        cost = np.where(distance <= gate, distance, 1e9)
        for r, c in zip(*linear_sum_assignment(cost)):
            if distance[r, c] <= gate[r, c]:
                pairs.add((free_a[r], free_b[c]))
    return pairs


def gate_mm(params: TrackingParameters, *diameters: float) -> float:
    """How far apart two centroids may be for their lesions to match: the gate, or more for large lesions."""
    return max(params.match_gate_mm, params.match_gate_diameter_factor * max(diameters))


def groups(pairs: set[tuple[int, int]], a_ids: list[int], b_ids: list[int]) -> list[tuple[list[int], list[int]]]:
    """Connected groups of the bipartite link graph, as (a ids, b ids), in a stable order."""
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(node):
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for i in a_ids:
        find(("a", i))
    for j in b_ids:
        find(("b", j))
    for i, j in pairs:
        parent[find(("a", i))] = find(("b", j))
    groups: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for side, ids in (("a", a_ids), ("b", b_ids)):
        for n in ids:
            group = groups.setdefault(find((side, n)), ([], []))
            group[0 if side == "a" else 1].append(n)
    return sorted(groups.values(), key=lambda g: (min(g[1]) if g[1] else 10**9, min(g[0]) if g[0] else 10**9))


@dataclass
class Track:
    """A lesion followed over the timeline."""

    track_id: int
    first_session: int
    split_from: int | None = None
    merged_into: int | None = None
    merged_at: int | None = None  # the session (index) from which its lesion is part of merged_into's
    resolved: bool = False
    last_centroid: np.ndarray = field(default_factory=lambda: np.zeros(3))
    last_diameter: float = 0.0


def follow(sessions: list[SessionLesions], params: TrackingParameters) -> tuple[list[list[dict[str, Any]]], dict]:
    """Per session, one entry per track present or just ended: ``track_id``, ``lesion_id`` (None when
    resolved), ``event``, ``split_from``, ``merged_into``; and the tracks by id."""
    tracks: dict[int, Track] = {}
    entries: list[list[dict[str, Any]]] = []
    current: dict[int, int] = {}  # lesion id of the previous session -> track id

    def start(session: int, lesion: int, data: SessionLesions, split_from: int | None = None) -> int:
        track = Track(len(tracks) + 1, session, split_from=split_from)
        tracks[track.track_id] = track
        return see(track.track_id, lesion, data)

    def see(track_id: int, lesion: int, data: SessionLesions) -> int:
        track = tracks[track_id]
        track.resolved, track.last_centroid, track.last_diameter = False, data.centroids[lesion], data.diameters[lesion]
        return track_id

    def entry(track_id: int, lesion: int | None, event: str) -> dict[str, Any]:
        t = tracks[track_id]
        return {"track_id": track_id, "lesion_id": lesion, "event": event, "split_from": t.split_from,
                "merged_into": t.merged_into}  # fmt: skip

    for s, data in enumerate(sessions):
        rows: list[dict[str, Any]] = []
        mapping: dict[int, int] = {}
        if s == 0:
            for lesion in data.ids:
                mapping[lesion] = start(0, lesion, data)
                rows.append(entry(mapping[lesion], lesion, "baseline"))
        else:
            previous = sessions[s - 1]
            ended_before = [t for t in tracks.values() if t.resolved and t.merged_into is None]
            for parents, children in groups(link(previous, data, params), previous.ids, data.ids):
                if parents and not children:
                    (parent,) = parents
                    tracks[current[parent]].resolved = True
                    rows.append(entry(current[parent], None, "resolved"))
                    continue
                if not parents:
                    (child,) = children
                    near = [
                        (np.linalg.norm(t.last_centroid - data.centroids[child]), t.track_id)
                        for t in ended_before
                        if np.linalg.norm(t.last_centroid - data.centroids[child])
                        <= gate_mm(params, t.last_diameter, data.diameters[child])
                    ]
                    if near:
                        track_id = see(min(near)[1], child, data)
                        ended_before = [t for t in ended_before if t.track_id != track_id]
                        mapping[child] = track_id
                        rows.append(entry(track_id, child, "reappeared"))
                    else:
                        mapping[child] = start(s, child, data)
                        rows.append(entry(mapping[child], child, "new"))
                    continue
                keeper = current[max(parents, key=lambda p: (previous.volumes[p], -p))]
                heir = max(children, key=lambda c: (data.volumes[c], -c))
                mapping[heir] = see(keeper, heir, data)
                if len(parents) == 1 and len(children) == 1:
                    event = "persisting"
                elif len(children) == 1:
                    event = "merged"
                else:
                    event = "split" if len(parents) == 1 else "merged"
                rows.append(entry(keeper, heir, event))
                for parent in parents:
                    if current[parent] != keeper:
                        tracks[current[parent]].merged_into = keeper  # its lesion is now part of the heir
                        tracks[current[parent]].merged_at = s
                        rows.append(entry(current[parent], None, "merged"))
                for child in children:
                    if child != heir:
                        mapping[child] = start(s, child, data, split_from=keeper)
                        rows.append(entry(mapping[child], child, "split"))
            seen = {r["track_id"] for r in rows}
            for track in tracks.values():  # resolved earlier and still gone
                if track.resolved and track.merged_into is None and track.track_id not in seen:
                    rows.append(entry(track.track_id, None, "resolved"))
        entries.append(sorted(rows, key=lambda r: r["track_id"]))
        current = mapping
    return entries, tracks


def represented(tracks: dict[int, Track], track_id: int, session: int) -> set[int]:
    """The tracks a lesion of ``track_id`` stands for at ``session``: itself, what it split from (fragments
    add up to their parent) and what merged into it by then."""
    out, todo = set(), [track_id]
    while todo:
        t = todo.pop()
        if t in out:
            continue
        out.add(t)
        if tracks[t].split_from is not None:
            todo.append(tracks[t].split_from)
        todo += [x.track_id for x in tracks.values() if x.merged_into == t and x.merged_at <= session]
    return out
