"""Moves what tenants wrote in tag mode into their workspaces, for switching an existing MLflow
from `tenant_isolation=tag` to `tenant_isolation=workspace` (docs/operations.md, "Moving from
tag mode to workspace mode").

When MLflow 3.10+ starts with `--enable-workspaces` on an existing database, everything already
there stays in the `default` workspace. The gateway never pins `default`, so no tenant sees that
data any more. Nothing is deleted. This script gives each tenant its data back:

* the experiments whose tenant tag (`--tenant-tag-key`) names the tenant, with their runs,
  logged models, traces and GenAI objects, because those follow their experiment;
* the registered models and prompts whose tenant tag names the tenant, with their versions,
  tags and aliases, because MLflow cascades those from the model;
* the evaluation datasets whose experiments all belong to that tenant.

Each goes into workspace `--workspace-prefix` + tenant, which is created if it is missing. With a
local `--artifacts-destination`, each moved experiment's proxied artifacts are moved from
`<destination>/<experiment id>/` to `<destination>/workspaces/<workspace>/<experiment id>/`.
MLflow serves an experiment of a workspace from there. For a remote store (`s3://…`, …) the
script prints the moves for you to run.

Untagged objects, including MLflow's Default experiment `0`, stay in `default`. So do tenant ids
that are not valid workspace names; the script lists them. Without `--apply` it only prints the
plan. Run it with MLflow stopped, using the MLflow version the server runs:

    $VENV/bin/python scripts/migrate_to_workspaces.py --backend-store-uri sqlite:////data/mlflow.db \\
        --artifacts-destination /data/artifacts [--apply]
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re
import shutil
import sys

DEFAULT = "default"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RESERVED = {"default", "workspaces", "api", "ajax-api", "static-files"}


def workspace_for(prefix: str, tenant: str) -> str | None:
    """The gateway's mapping (src/vocab/workspace_name.rs): prefix + tenant, or nothing."""
    name = prefix + tenant
    ok = 2 <= len(name) <= 63 and NAME.match(name) and name not in RESERVED
    return name if ok else None


def local_dir(destination: str | None) -> pathlib.Path | None:
    if not destination:
        return None
    if destination.startswith("file://"):
        return pathlib.Path(destination[len("file://"):])
    if "://" in destination:
        return None
    return pathlib.Path(destination)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend-store-uri", required=True)
    ap.add_argument("--artifacts-destination",
                    help="the server's --artifacts-destination (a local path moves the files)")
    ap.add_argument("--tenant-tag-key", default="tenant")
    ap.add_argument("--workspace-prefix", default="")
    ap.add_argument("--apply", action="store_true", help="make the changes (default: print the plan)")
    args = ap.parse_args()

    from mlflow.entities.workspace import Workspace
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModel, SqlRegisteredModelTag
    from mlflow.store.tracking.dbmodels.models import (
        SqlEntityAssociation,
        SqlEvaluationDataset,
        SqlExperiment,
        SqlExperimentTag,
    )
    from mlflow.store.workspace.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(args.backend_store_uri)
    key = args.tenant_tag_key
    experiments: dict[str, list[SqlExperiment]] = collections.defaultdict(list)
    models: dict[str, list[str]] = collections.defaultdict(list)
    datasets: dict[str, list[str]] = collections.defaultdict(list)
    with store.ManagedSessionMaker() as session:
        owner_of_exp = {}
        for exp, tenant in (session.query(SqlExperiment, SqlExperimentTag.value)
                            .join(SqlExperimentTag, SqlExperimentTag.experiment_id == SqlExperiment.experiment_id)
                            .filter(SqlExperimentTag.key == key, SqlExperiment.workspace == DEFAULT)):
            experiments[tenant].append(exp)
            owner_of_exp[str(exp.experiment_id)] = tenant
        for name, tenant in (session.query(SqlRegisteredModel.name, SqlRegisteredModelTag.value)
                             .join(SqlRegisteredModelTag, (SqlRegisteredModelTag.name == SqlRegisteredModel.name)
                                   & (SqlRegisteredModelTag.workspace == SqlRegisteredModel.workspace))
                             .filter(SqlRegisteredModelTag.key == key, SqlRegisteredModel.workspace == DEFAULT)):
            models[tenant].append(name)
        for (ds_id,) in session.query(SqlEvaluationDataset.dataset_id).filter(SqlEvaluationDataset.workspace == DEFAULT):
            linked = [a.destination_id for a in session.query(SqlEntityAssociation).filter(
                SqlEntityAssociation.source_type == "EVALUATION_DATASET",
                SqlEntityAssociation.source_id == ds_id,
                SqlEntityAssociation.destination_type == "EXPERIMENT")]
            owners = {owner_of_exp.get(str(e)) for e in linked}
            if len(owners) == 1 and None not in owners:
                datasets[owners.pop()].append(ds_id)
        exp_rows = {t: [(str(e.experiment_id), e.artifact_location) for e in es] for t, es in experiments.items()}

    tenants = sorted(set(exp_rows) | set(models) | set(datasets))
    dest = local_dir(args.artifacts_destination)
    existing = {w.name for w in store.list_workspaces()}
    skipped, moves = [], []
    for tenant in tenants:
        ws = workspace_for(args.workspace_prefix, tenant)
        if ws is None:
            skipped.append(tenant)
            continue
        exps = exp_rows.get(tenant, [])
        print(f"tenant {tenant} -> workspace {ws}{'' if ws in existing else ' (created)'}: "
              f"{len(exps)} experiment(s), {len(models.get(tenant, []))} registered model(s)/prompt(s), "
              f"{len(datasets.get(tenant, []))} dataset(s)")
        for exp_id, location in exps:
            if location != f"mlflow-artifacts:/{exp_id}":
                print(f"  experiment {exp_id}: artifact location {location} is not a proxied root; its files stay where they are")
                continue
            if dest is None:
                target = args.artifacts_destination or "<artifacts-destination>"
                moves.append(f"move {target}/{exp_id}/ to {target}/workspaces/{ws}/{exp_id}/")
            elif (dest / exp_id).exists():
                moves.append((dest / exp_id, dest / "workspaces" / ws / exp_id))
        if not args.apply:
            continue
        if ws not in existing:
            store.create_workspace(Workspace(name=ws, description=f"tenant {tenant} (moved from tag mode)"))
        with store.ManagedSessionMaker(read_only=False) as session:
            ids = [e for e, _ in exps]
            if ids:
                session.query(SqlExperiment).filter(SqlExperiment.experiment_id.in_(ids)).update(
                    {SqlExperiment.workspace: ws}, synchronize_session=False)
            if models.get(tenant):
                session.query(SqlRegisteredModel).filter(
                    SqlRegisteredModel.workspace == DEFAULT, SqlRegisteredModel.name.in_(models[tenant])
                ).update({SqlRegisteredModel.workspace: ws}, synchronize_session=False)
            if datasets.get(tenant):
                session.query(SqlEvaluationDataset).filter(
                    SqlEvaluationDataset.dataset_id.in_(datasets[tenant])
                ).update({SqlEvaluationDataset.workspace: ws}, synchronize_session=False)
    for move in moves:
        if isinstance(move, str):
            print(f"  artifacts (run this yourself): {move}")
        else:
            src, dst = move
            print(f"  artifacts: {src} -> {dst}")
            if args.apply:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
    for tenant in skipped:
        print(f"tenant {tenant!r}: not a valid workspace name with prefix {args.workspace_prefix!r}; "
              "its data stays in `default` (choose a --workspace-prefix, as for the gateway)")
    if not args.apply:
        print("dry run: nothing changed (add --apply)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
