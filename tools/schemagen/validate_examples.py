#!/usr/bin/env python3
"""Checks the example documents of test/data/api against the schemas.

    validate_examples.py SCHEMA_DIR DATA_DIR

Every schema in SCHEMA_DIR must be a valid draft 2020-12 schema. Every
document of DATA_DIR/valid/*.yaml must pass both sluice.json and the schema
of its kind. Every document of DATA_DIR/invalid/*.yaml must fail, with a
message containing the text of its "# expect: ..." comment, so that a
document failing for another reason (or passing) is noticed.
"""
import json
import pathlib
import re
import sys

import yaml
from jsonschema import Draft202012Validator


def messages(errors):
    """Every message of a list of errors, nested ones (anyOf, if/then) too."""
    out = []
    for e in errors:
        out.append(e.message)
        out.extend(messages(e.context))
    return out


def main():
    schema_dir = pathlib.Path(sys.argv[1])
    data_dir = pathlib.Path(sys.argv[2])
    failures = []

    validators = {}
    for path in sorted(schema_dir.glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        validators[path.name] = Draft202012Validator(schema)
    anykind = validators["sluice.json"]

    checked = 0
    for path in sorted((data_dir / "valid").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text()), 1):
            if doc is None:
                continue
            checked += 1
            where = f"{path.name} document {i} ({doc.get('kind')} {doc.get('metadata', {}).get('name')})"
            errs = messages(anykind.iter_errors(doc))
            per_kind = f"{doc['apiVersion'].replace('/', '_')}_{doc['kind']}.json"
            if per_kind not in validators:
                failures.append(f"{where}: no schema {per_kind}")
                continue
            errs += messages(validators[per_kind].iter_errors(doc))
            if errs:
                failures.append(f"{where}: should be valid: {'; '.join(errs)}")

    for path in sorted((data_dir / "invalid").glob("*.yaml")):
        texts = re.split(r"^---\s*$", path.read_text(), flags=re.M)
        for i, text in enumerate(texts, 1):
            doc = yaml.safe_load(text)
            if doc is None:
                continue
            checked += 1
            m = re.search(r"^# expect: (.+)$", text, flags=re.M)
            where = f"{path.name} document {i}"
            if not m:
                failures.append(f"{where}: no '# expect: ...' comment")
                continue
            errs = messages(anykind.iter_errors(doc))
            if not errs:
                failures.append(f"{where}: should be invalid ({m.group(1)}) but passed")
            elif not any(m.group(1) in e for e in errs):
                failures.append(f"{where}: expected '{m.group(1)}', got: {'; '.join(errs)}")

    for f in failures:
        print(f, file=sys.stderr)
    print(f"{checked} documents checked, {len(failures)} failures")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
