"""``scratchd lint [FILE]``: check a wercker.yml without running anything."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check a wercker.yml",
        description="Print FILE:LINE:COL: message for every error and warning of a "
        "wercker.yml; exit 1 if there are errors.",
    )
    parser.add_argument("file", nargs="?", default="wercker.yml", help="default: ./wercker.yml")
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 on any finding)"
    )
    parser.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="lint as a run of these pipelines would (repeatable) and print what it runs",
    )
    parser.add_argument(
        "--secrets-file",
        metavar="FILE",
        help="the K=V secrets file builds get: warn when one of its variables would go "
        "into an image config",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.pipeline.lint import lint_file

    pipelines = tuple(args.pipeline)

    names: frozenset[str] = frozenset()
    if args.secrets_file:
        from scratchd.pipeline.secrets import load_secrets_file

        names = frozenset(load_secrets_file(args.secrets_file))
    found = lint_file(Path(args.file), pipelines, names)
    for diagnostic in found:
        print(diagnostic.format(args.file))
    if pipelines and not any(d.severity == "error" for d in found):
        _print_run(Path(args.file), pipelines)
    failing = found if args.strict else [d for d in found if d.severity == "error"]
    return 1 if failing else 0


def _print_run(path: Path, pipelines: tuple[str, ...]) -> None:
    """What a run of ``pipelines`` would do: each pipeline's steps and deploy targets."""
    from scratchd.pipeline.parse import parse_plan

    plan = parse_plan(path.read_text(encoding="utf-8-sig"), str(path), requested=pipelines)
    for name in pipelines:
        pipeline = plan.pipeline(name)
        assert pipeline is not None  # lint found no error: every named pipeline exists
        steps = ", ".join(s.name for s in pipeline.steps) or "no steps"
        print(f"run {name}: {steps}")
        if pipeline.after_steps:
            print(f"  after-steps: {', '.join(s.name for s in pipeline.after_steps)}")
        for target, target_steps in pipeline.targets:
            print(f"  deploy target {target}: {', '.join(s.name for s in target_steps)}")
