"""Publish unitok tokenizers to the Hugging Face Hub (installed as `unitok.hub_upload`).

    from unitok.hub_upload import stage, push, GitTransport

    staged = stage("runs/flextok/export", "my-org/flextok-tiny", evaluation="eval_out")   # nothing uploaded yet
    print(staged.listing())
    push(staged)                                          # create_repo + upload_folder on the Hub
    push(staged, transport=GitTransport("/srv/mirror/models/my-org/flextok-tiny"))   # a commit in a git repo

Command line: `unitok push SOURCE ORG/NAME [--dry-run] [--to-git PATH] ...` (see `unitok push --help`).
"""

from .cards import families, family_for, render_card, validate_card
from .staging import StagedFile, StagedRepo, check_repo_id, stage
from .transports import GitTransport, HubTransport, PublishError, PushResult


def push(staged: StagedRepo, *, transport=None, revision: str = "main", create_pr: bool = False,
         private: bool = False, commit_message: str | None = None, overwrite: bool = False) -> PushResult:
    """Upload a staged repository (to the Hub unless another transport is given). See `transports` for the rules:
    idempotent, the revision ends up holding exactly the staged files, main is not replaced without `overwrite`."""
    import unitok

    transport = transport if transport is not None else HubTransport()
    message = commit_message or f"Upload {staged.model_type} ({staged.weights_origin} weights) with unitok " \
                                f"{unitok.__version__}"
    return transport.push(staged, revision=revision, create_pr=create_pr, private=private, commit_message=message,
                          overwrite=overwrite)


__all__ = ["stage", "push", "StagedRepo", "StagedFile", "check_repo_id", "HubTransport", "GitTransport",
           "PushResult", "PublishError", "families", "family_for", "render_card", "validate_card"]
