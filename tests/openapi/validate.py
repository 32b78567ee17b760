"""Validates an OpenAPI 3.1 document with openapi-spec-validator: `python validate.py FILE`.

Prints `valid` and exits 0, or prints every error and exits 1. Before judging the document it
checks that the validator rejects a broken copy of it, so a validator that accepts anything
cannot pass the test.
"""

import copy
import json
import sys

from openapi_spec_validator.validation import OpenAPIV31SpecValidator


def errors(spec):
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in OpenAPIV31SpecValidator(spec).iter_errors()]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    if not str(spec.get("openapi", "")).startswith("3.1."):
        print(f"not an OpenAPI 3.1 document: openapi = {spec.get('openapi')!r}")
        return 1
    broken = copy.deepcopy(spec)
    del broken["info"]["title"]  # required by every version of the specification
    if not errors(broken):
        print("the validator accepted a document without info.title: it is not checking anything")
        return 1
    found = errors(spec)
    for e in found:
        print(e)
    if found:
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
