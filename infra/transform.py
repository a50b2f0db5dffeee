"""Writes the plain CloudFormation that AWS's SAM transform makes of
infra/template.yaml, the way `sam package` + CloudFormation would see it
(local CodeUri and TemplateURL paths become S3 locations), so that cfn-lint can check the
template as it is deployed as well as as it is written.

    python infra/transform.py infra/template.yaml OUT.json
"""

import json
import os
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no AWS managed policies: nothing to look up."""

    def load(self):
        return {}


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    # The transform fills in pseudo parameters from the session's region.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = cfn_yaml.load(source)
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
            props.get("CodeUri"), str
        ):
            # What `sam package` does: upload the zip, point at it.
            props["CodeUri"] = f"s3://raptr-artifacts/{name}.zip"
        if resource.get("Type") == "AWS::CloudFormation::Stack" and isinstance(
            props.get("TemplateURL"), str
        ):
            # Likewise for a nested stack's template (linted on its own).
            props["TemplateURL"] = (
                f"https://raptr-artifacts.s3.amazonaws.com/{props['TemplateURL']}"
            )
    transformed = transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())
    with open(out, "w") as f:
        json.dump(transformed, f, indent=1, sort_keys=True)
    kinds = sorted({r["Type"] for r in transformed["Resources"].values()})
    print(f"{source}: {len(transformed['Resources'])} resources after the SAM transform ({', '.join(kinds)})")


if __name__ == "__main__":
    main()
