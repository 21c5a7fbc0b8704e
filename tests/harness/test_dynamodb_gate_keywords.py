"""A placeholder whose name is a clause's keyword (``#add``, ``:set``, ``#REMOVE``) is a
placeholder: the gate must apply, and measure, the plain top-level SET it is part of,
or an item DynamoDB refuses as over 400 KB reaches moto, which stores it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from testkit.aws.dynamodb_gate import ITEM_SIZE_LIMIT, updated_item
from tests.harness.test_dynamodb_gate import TABLE, Gate, gate, near_the_limit, stored

__all__ = ["gate"]  # the fixture, shared with the gate's own tests

ITEM = {"task_id": {"S": "t1"}}


@pytest.mark.parametrize(
    ("update", "names", "values"),
    [
        ("SET #add = :v", {"#add": "a"}, {":v": {"S": "x"}}),
        ("SET #REMOVE = :v", {"#REMOVE": "a"}, {":v": {"S": "x"}}),
        ("SET a = :set", {}, {":set": {"S": "x"}}),
        ("SET a = :delete", {}, {":delete": {"S": "x"}}),
    ],
)
def test_a_placeholder_named_as_a_keyword_is_applied_as_a_plain_set(
    update: str, names: dict[str, str], values: dict[str, dict[str, str]]
) -> None:
    assert updated_item(ITEM, update, names, values) == {**ITEM, "a": {"S": "x"}}


def test_an_update_past_400_kb_through_a_keyword_named_placeholder_is_refused(
    gate: Gate,
) -> None:
    gate.admin.put_item(TableName=TABLE, Item=near_the_limit("kw", ITEM_SIZE_LIMIT - 10))
    with pytest.raises(ClientError) as refused:
        gate.dynamodb.update_item(
            TableName=TABLE,
            Key={"task_id": {"S": "kw"}},
            UpdateExpression="SET #add = :set",
            ExpressionAttributeNames={"#add": "link"},
            ExpressionAttributeValues={":set": {"S": "x" * 7}},  # one byte too many
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "link" not in (stored(gate, "kw") or {})
