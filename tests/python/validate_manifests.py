#!/usr/bin/env python3
"""Offline validation of Kubernetes manifests (run by tests/tests/e2e/k8s_manifests.rs).

    validate_manifests.py --keda-schema FILE -k 1.30.0 [-k 1.37.0 ...] MANIFEST...

Core kinds are checked with kubernetes-validate in strict mode (an unknown
field is an error) against each Kubernetes version given. KEDA ScaledObjects
are checked against the schema kept in the repository: a JSON Schema, or a
KEDA CRD (its openAPIV3Schema is used). Any other kind is an error, so a
manifest nothing can check never passes unnoticed.

Prints one line per document and problem, then "validated N documents, F failed";
exits 1 when any failed.
"""

import argparse
import json
import sys

import jsonschema
import kubernetes_validate
import yaml

KEDA = ("keda.sh/v1alpha1", "ScaledObject")


def load_keda_schema(path):
    with open(path) as f:
        text = f.read()
    doc = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    if doc.get("kind") == "CustomResourceDefinition":
        version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1alpha1")
        doc = version["schema"]["openAPIV3Schema"]
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def name_of(doc):
    meta = doc.get("metadata") or {}
    return "%s/%s" % (doc.get("kind", "?"), meta.get("name", "?"))


def problems(doc, keda, versions):
    """Every problem of one document, as 'path: message' strings."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return ["not a Kubernetes object (no apiVersion or kind)"]
    if (doc["apiVersion"], doc["kind"]) == KEDA:
        return [
            "%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message)
            for e in sorted(keda.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        ]
    found = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path) or "(root)"
            found.append("k8s %s: %s: %s" % (version, path, e.message))
        except kubernetes_validate.SchemaNotFoundError:
            found.append("k8s %s: no schema for %s %s" % (version, doc["apiVersion"], doc["kind"]))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keda-schema", required=True)
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    keda = load_keda_schema(args.keda_schema)
    total = failed = 0
    for path in args.files:
        with open(path) as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                print("error %s: not YAML: %s" % (path, str(e).replace("\n", " ")))
                failed += 1
                continue
        for doc in docs:
            total += 1
            found = problems(doc, keda, args.kubernetes_version)
            if found:
                failed += 1
                for p in found:
                    print("error %s %s: %s" % (path, name_of(doc), p))
            else:
                print("ok %s %s" % (path, name_of(doc)))
    print("validated %d documents, %d failed" % (total, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
