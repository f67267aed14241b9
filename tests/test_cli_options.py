"""The option groups several subcommands share come from one parent parser each (brainmets.cli.common): the same
name, type and default everywhere, in the place of each command's --help they always had."""

from __future__ import annotations

import argparse

import pytest

from brainmets.cli import build_parser
from brainmets.cli.common import config_options, identity_options, reference_options, threads_options


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[-1] if a.option_strings else a.dest for a in parser._actions]


SHARED = {
    "--verbose": ("features", "indicate", "followup", "compare", "export", "cohort", "figures", "dataset-description"),
    "--config": ("features", "indicate", "followup", "compare", "export"),
    "--config-json": ("features", "indicate", "followup", "compare", "export"),
    "--threads": ("features", "followup", "compare"),
    "--subject": ("features", "indicate", "followup", "compare", "export"),
    "--session": ("features", "indicate", "compare", "export"),
    "--status-json": ("features", "indicate", "followup", "compare", "export"),
    "--scheme": ("features", "compare", "export"),
    "--parcellation": ("features", "compare"),
    "--atlas-dir": ("features", "compare"),
}


@pytest.mark.parametrize("option", SHARED)
def test_a_shared_option_is_the_same_in_every_command(option):
    commands = subcommands()
    found = {name: next(a for a in p._actions if option in a.option_strings) for name, p in commands.items()
             if option in p._option_string_actions}  # fmt: skip
    assert sorted(found) == sorted(SHARED[option])
    kinds = {(a.dest, a.default, a.type, a.nargs, a.required, type(a)) for a in found.values()}
    assert len(kinds) == 1, kinds


def test_the_commands_list_their_options_in_their_own_order():
    commands = subcommands()
    assert options(commands["compare"]) == [
        "--help", "--verbose", "--quiet", "--reference", "--prediction", "--out-json", "--out-tsv", "--out-lesions-tsv",
        "--metrics", "--detection-bins-mm3", "--scheme", "--clinical", "--subject", "--session", "--parcellation", "--posterior-fossa-mask",
        "--atlas", "--atlas-dir", "--config", "--config-json", "--status-json", "--threads",
    ]  # fmt: skip
    assert options(commands["followup"]) == [
        "--help", "--verbose", "--quiet", "--timeline", "--subject", "--out-json", "--out-figure", "--status-json",
        "--out-dir", "--config", "--config-json", "--register", "--threads",
    ]  # fmt: skip
    assert options(commands["export"]) == [
        "--help", "--verbose", "--quiet", "segmentation", "--format", "--out", "--reference-series", "--image",
        "--followup", "--subject", "--session", "--scheme", "--config", "--config-json", "--status-json",
    ]  # fmt: skip
    features = commands["features"]
    assert options(features)[:12] == [
        "--help", "--verbose", "--quiet", "segmentation", "--out-json", "--out-tsv", "--out-instances", "--out-figure",
        "--out-viewer", "--image", "--figure-max-panels", "--status-json",
    ]  # fmt: skip
    assert [g.title for g in features._action_groups] == [
        "positional arguments",
        "options",
        "outputs (at least one)",
        "study identity (recorded in the outputs)",
        "parameters (defaults: see README; command-line values override --config)",
        "anatomical reference (one of them; without one, location fields are null and say why)",
        "DICOM inputs (SEG, RTSTRUCT, label series; see README, DICOM)",
    ]
    anatomy = features._action_groups[5]._group_actions
    assert [a.option_strings[0] for a in anatomy][:5] == [
        "--parcellation", "--parcellation-definition", "--posterior-fossa-mask", "--atlas", "--atlas-dir",
    ]  # fmt: skip


def test_the_parents_carry_each_commands_help_text():
    parser = argparse.ArgumentParser(
        parents=[
            identity_options("whose rows", session_help=None),
            config_options("my config"),
            reference_options(
                dict.fromkeys(("parcellation", "posterior_fossa_mask", "atlas", "atlas_dir"), "where"),
                metavars=dict.fromkeys(("parcellation", "posterior_fossa_mask", "atlas", "atlas_dir"), "FILE"),
            ),
            threads_options("how many"),
        ]
    )
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["subject"] == "whose rows" and "session" not in helps
    assert helps["config"] == "my config" and helps["config_json"] == "the same as a JSON string (after --config)"
    assert helps["atlas_dir"] == "where" and helps["threads"] == "how many"
    args = parser.parse_args(["--subject", "01", "--atlas-dir", "a", "--threads", "3"])
    assert (args.subject, args.atlas_dir, args.threads, args.parcellation) == ("01", "a", 3, None)
