"""The MLflow routes whose request message carries tags (a `tags` field at any depth, a
`tag_key`, or a Set/Delete...Tag method), read from the installed MLflow's protobuf service
descriptors. `tests/data/tag_writing_routes.json` holds this list for the pinned MLflow; the
Rust unit test `policy::tests::every_tag_writing_route_goes_through_the_guard` reads that file,
and `test_route_inventory.py` checks the file against the installed MLflow.

Run as a script to print the list (to refresh the file after an MLflow upgrade)."""

import importlib
import json

SERVICE_MODULES = ["service_pb2", "model_registry_pb2", "datasets_pb2", "label_schemas_pb2",
                   "review_queues_pb2", "issues_pb2", "mlflow_artifacts_pb2"]


def _tag_fields(desc, prefix="", depth=0):
    out = []
    for f in desc.fields:
        if f.name in ("tags", "tag_key") or (f.name == "key" and "Tag" in desc.name):
            out.append(prefix + f.name)
        if f.message_type is not None and depth < 3 and f.message_type.full_name.startswith("mlflow"):
            out += _tag_fields(f.message_type, prefix + f.name + ".", depth + 1)
    return out


def tag_writing_routes() -> list[list[str]]:
    from mlflow.protos import databricks_pb2
    routes = set()
    for mod_name in SERVICE_MODULES:
        try:
            mod = importlib.import_module("mlflow.protos." + mod_name)
        except ImportError:  # an older MLflow (scripts/check_versions.sh): the list then differs
            continue
        for service in mod.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                tagged = _tag_fields(method.input_type) or (
                    "Tag" in method.name and method.name.startswith(("set", "delete")))
                if not tagged:
                    continue
                for ep in method.GetOptions().Extensions[databricks_pb2.rpc].endpoints:
                    routes.add((ep.method, ep.path))
    return sorted([list(r) for r in routes])


if __name__ == "__main__":
    print(json.dumps(tag_writing_routes(), indent=1))
