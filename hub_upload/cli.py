"""`unitok push SOURCE ORG/NAME`: stage a model as a Hub repository and upload it (or only stage it: --dry-run).

    unitok push runs/flextok/export my-org/flextok-tiny --eval eval_out --dry-run
    unitok push runs/flextok/export my-org/flextok-tiny --eval eval_out                 # to the Hub
    unitok push runs/flextok/export my-org/flextok-tiny --to-git /srv/mirror/models/my-org/flextok-tiny

The Hub token comes from HF_TOKEN or `hf auth login` (there is deliberately no --token flag: tokens on command
lines end up in shell histories); it is never printed.
"""

import argparse
import shutil
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a saved model folder (e.g. a training export or a converted checkpoint); "
                        "with --random-weights, a variant name from `unitok list`")
    parser.add_argument("repo_id", help="Hub repository, org/name")
    parser.add_argument("--dry-run", action="store_true", help="stage and list the files; upload nothing")
    parser.add_argument("--stage-dir", default=None, help="keep the staged repository here (default: temporary)")
    parser.add_argument("--to-git", default=None, metavar="PATH",
                        help="commit into this local git repository instead of uploading to the Hub")
    parser.add_argument("--revision", default="main", help="branch to push to (created from main if missing)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request against --revision")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument("--overwrite", action="store_true", help="replace a main branch that holds another model")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--recipe", default=None, help="training config used (default: SOURCE/recipe.yaml)")
    parser.add_argument("--eval", dest="evaluation", default=None,
                        help="`unitok eval` output folder or metrics.json (default: SOURCE/eval/)")
    parser.add_argument("--license", default=None, help="Hub licence id (default: from the weights' origin)")
    parser.add_argument("--license-name", default=None, help="with --license other")
    parser.add_argument("--license-link", default=None, help="with --license other")
    parser.add_argument("--base-model", default=None, help="Hub id of the model these weights were fine-tuned from")
    parser.add_argument("--random-weights", action="store_true",
                        help="publish a variant with random weights (test repositories); the card says so")
    parser.add_argument("--seed", type=int, default=0, help="seed of --random-weights")


def run(args: argparse.Namespace) -> str:
    """Stage (and push); returns the summary printed to the user. Raises ValueError / PublishError."""
    import torch

    from . import GitTransport, push, stage

    source = args.source
    if args.random_weights:
        import unitok

        torch.manual_seed(args.seed)
        source = unitok.create_model(args.source).eval()
    license = args.license
    if license == "other":
        if not (args.license_name and args.license_link):
            raise ValueError("--license other needs --license-name and --license-link.")
        license = {"id": "other", "name": args.license_name, "link": args.license_link}
    staged = stage(source, args.repo_id, args.stage_dir, dtype=args.dtype, recipe=args.recipe,
                   evaluation=args.evaluation, license=license, random_weights=args.random_weights,
                   base_model=args.base_model)
    lines = [staged.listing()]
    try:
        if args.dry_run:
            where = f"git repository {args.to_git}" if args.to_git else f"the Hub repository {args.repo_id}"
            lines.append(f"Dry run: these files would be pushed to {where} (revision {args.revision}); "
                         "nothing was uploaded.")
            return "\n".join(lines)
        transport = GitTransport(args.to_git) if args.to_git else None
        result = push(staged, transport=transport, revision=args.revision, create_pr=args.create_pr,
                      private=args.private, commit_message=args.commit_message, overwrite=args.overwrite)
    finally:
        if args.stage_dir is None:
            shutil.rmtree(staged.folder.parent, ignore_errors=True)
    if not result.changed:
        lines.append(f"{args.repo_id}@{args.revision} already holds exactly these files (commit {result.commit}); "
                     "nothing uploaded.")
    else:
        lines.append(f"Pushed {len(result.changed_files)} changed files to {args.repo_id}@{args.revision}: commit "
                     f"{result.commit}" + (f" ({result.url})" if result.url else "") + ".")
    return "\n".join(lines)


def main(argv=None) -> int:
    from .transports import PublishError

    parser = argparse.ArgumentParser(prog="python -m unitok.hub_upload", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(run(args))
    except (ValueError, PublishError) as error:
        print(f"unitok push: error: {error}", file=sys.stderr)
        return 2
    return 0
