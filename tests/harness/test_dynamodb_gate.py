"""The DynamoDB gate holds writes to DynamoDB's 400 KB item size, measured by DynamoDB's
documented rules, where moto measures by its own (and refuses from 405,000 bytes)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from testkit.aws.auth import ResourceArns, Role, Roles, Statement
from testkit.aws.dynamodb_gate import (
    ITEM_SIZE_LIMIT,
    DynamoDbGate,
    item_size,
    updated_item,
    value_size,
)
from testkit.aws.endpoint import REGION, MotoServer
from testkit.aws.resources import create_task_table

TABLE = "size-table"


# --- DynamoDB's measure, on its own ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "héllo"}, 6),  # UTF-8 bytes
        ({"S": ""}, 0),
        ({"N": "123.4500"}, 4),  # 5 significant digits: 3 bytes, plus 1
        ({"N": "-0.001"}, 2),  # sign, leading zeroes and exponent do not count
        ({"N": "1E+30"}, 2),
        ({"N": "1" * 38}, 20),  # every digit counts, past decimal's 28 too
        ({"N": "100.0010"}, 4),  # zeroes inside a number count
        ({"N": "12"}, 2),
        ({"N": "123"}, 3),
        ({"B": base64.b64encode(b"\x00" * 10).decode()}, 10),  # raw bytes, not base64
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"L": []}, 3),
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + (1 + 2) + (1 + 2)),
        ({"M": {}}, 3),
        ({"M": {"kk": {"S": "v"}}}, 3 + 1 + 2 + 1),
        ({"SS": ["a", "bé"]}, 1 + 3),
        ({"NS": ["1", "22222"]}, 2 + 4),
        ({"BS": [base64.b64encode(b"abc").decode()]}, 3),
        ({"L": [{"M": {"a": {"L": [{"NULL": True}]}}}]}, 3 + 1 + (3 + 1 + 1 + (3 + 1 + 1))),
    ],
)
def test_each_value_is_measured_as_dynamodb_documents(value: dict, size: int) -> None:
    assert value_size(value) == size


def test_an_item_is_its_names_utf8_bytes_and_its_values() -> None:
    assert item_size({"task_id": {"S": "t1"}, "état": {"BOOL": False}}) == 7 + 2 + 5 + 1


def test_a_value_of_no_dynamodb_type_is_refused() -> None:
    with pytest.raises(ValueError, match="no DynamoDB type"):
        value_size({"X": "1"})
    with pytest.raises(ValueError, match="no DynamoDB number"):
        value_size({"N": "NaN"})


# --- an update applied, as far as the gate applies one ----------------------------------

ITEM = {"task_id": {"S": "t1"}, "status": {"S": "RUNNING"}, "old": {"S": "x"}}


def test_set_and_remove_of_top_level_attributes_are_applied_on_the_item_as_it_was() -> None:
    after = updated_item(
        ITEM,
        "SET #s = :done, copy = #s, kept = if_not_exists(old, :v), new = if_not_exists(nope, :v)"
        " REMOVE old",
        {"#s": "status"},
        {":done": {"S": "COMPLETED"}, ":v": {"S": "v"}},
    )
    assert after == {
        "task_id": {"S": "t1"},
        "status": {"S": "COMPLETED"},
        "copy": {"S": "RUNNING"},  # the operand read the item before the update
        "kept": {"S": "x"},
        "new": {"S": "v"},
    }


@pytest.mark.parametrize(
    "update",
    [
        "SET a.b = :v",
        "SET a[0] = :v",
        "SET n = n + :v",
        "SET l = list_append(l, :v)",
        "ADD n :v",
        "DELETE s :v",
        "REMOVE a.b",
        "SET missing = nowhere",
        "SET = :v",
        "junk SET a = :v",
    ],
)
def test_an_update_of_another_form_is_left_unmeasured(update: str) -> None:
    assert updated_item(ITEM, update, {}, {":v": {"S": "v"}}) is None


# --- the gate in front of moto ----------------------------------------------------------


@dataclass
class Gate:
    dynamodb: Any  # through the gate, as a role allowed to write the table
    admin: Any  # moto, straight
    url: str
    moto_url: str
    writer: Role


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    moto = MotoServer.launch().ready()
    roles = Roles()
    table = ResourceArns("unused-bucket", TABLE, REGION).of("task table")
    writer = roles.create(
        "writer",
        [Statement(("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"), (table,))],
    )
    assert moto.endpoint is not None
    gate = DynamoDbGate(moto.endpoint, roles=roles, region=REGION)
    gate.start()
    create_task_table(moto.client("dynamodb"), TABLE)
    yield Gate(_client(gate.url, writer), moto.client("dynamodb"), gate.url, moto.endpoint, writer)
    gate.stop()
    moto.stop()


def _client(endpoint: str, role: Role) -> Any:
    return boto3.session.Session(
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        region_name=REGION,
    ).client("dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))


def near_the_limit(task_id: str, size: int) -> dict[str, Any]:
    """An item of ``size`` bytes by DynamoDB's measure that moto can hold: a list's
    overhead, which moto does not count, keeps moto's measure under its own 405,000."""
    item = {"task_id": {"S": task_id}, "marks": {"L": [{"S": "m"}] * 6000}}
    item["pad"] = {"S": "p" * (size - item_size(item) - len("pad"))}
    assert item_size(item) == size
    return item


def _refused(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return refused.value.response


def stored(gate: Gate, task_id: str) -> dict[str, Any] | None:
    return gate.admin.get_item(TableName=TABLE, Key={"task_id": {"S": task_id}}).get("Item")


def test_an_item_of_400_kb_is_stored_and_one_byte_more_is_refused(gate: Gate) -> None:
    gate.dynamodb.put_item(TableName=TABLE, Item=near_the_limit("fits", ITEM_SIZE_LIMIT))
    assert stored(gate, "fits") is not None

    answer = _refused(
        gate.dynamodb.put_item, TableName=TABLE, Item=near_the_limit("over", ITEM_SIZE_LIMIT + 1)
    )
    assert answer["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size has exceeded the maximum allowed size",
    }
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert stored(gate, "over") is None


def test_an_update_that_would_take_an_item_past_400_kb_is_refused_and_not_applied(
    gate: Gate,
) -> None:
    gate.admin.put_item(TableName=TABLE, Item=near_the_limit("grows", ITEM_SIZE_LIMIT - 10))
    answer = _refused(
        gate.dynamodb.update_item,
        TableName=TABLE,
        Key={"task_id": {"S": "grows"}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "link"},
        ExpressionAttributeValues={":v": {"S": "x" * 7}},  # 4 + 7 bytes: one too many
    )
    assert answer["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size to update has exceeded the maximum allowed size",
    }
    assert "link" not in (stored(gate, "grows") or {})


def test_an_update_that_ends_at_400_kb_is_applied(gate: Gate) -> None:
    gate.admin.put_item(TableName=TABLE, Item=near_the_limit("exact", ITEM_SIZE_LIMIT - 10))
    gate.dynamodb.update_item(
        TableName=TABLE,
        Key={"task_id": {"S": "exact"}},
        UpdateExpression="SET link = :v",
        ExpressionAttributeValues={":v": {"S": "x" * 6}},
    )
    after = stored(gate, "exact")
    assert after is not None
    assert item_size(after) == ITEM_SIZE_LIMIT


def test_an_update_that_frees_room_first_is_measured_as_a_whole(gate: Gate) -> None:
    gate.admin.put_item(TableName=TABLE, Item=near_the_limit("swap", ITEM_SIZE_LIMIT))
    gate.dynamodb.update_item(
        TableName=TABLE,
        Key={"task_id": {"S": "swap"}},
        UpdateExpression="SET #s = :s REMOVE marks",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "COMPLETED"}},
    )
    assert (stored(gate, "swap") or {})["status"] == {"S": "COMPLETED"}


def test_an_update_creating_its_item_is_measured_from_its_key(gate: Gate) -> None:
    answer = _refused(
        gate.dynamodb.update_item,
        TableName=TABLE,
        Key={"task_id": {"S": "new"}},
        UpdateExpression="SET big = :v, marks = :l",
        ExpressionAttributeValues={
            ":v": {"S": "b" * 400_000},
            ":l": {"L": [{"S": "m"}] * 6000},  # 12,003 bytes by DynamoDB's measure
        },
    )
    assert answer["Error"]["Code"] == "ValidationException"
    assert stored(gate, "new") is None


def test_an_update_the_gate_cannot_measure_reaches_moto(gate: Gate) -> None:
    gate.admin.put_item(TableName=TABLE, Item={"task_id": {"S": "n"}, "m": {"M": {}}})
    gate.dynamodb.update_item(
        TableName=TABLE,
        Key={"task_id": {"S": "n"}},
        UpdateExpression="SET m.a = :v",
        ExpressionAttributeValues={":v": {"S": "nested"}},
    )
    assert (stored(gate, "n") or {})["m"] == {"M": {"a": {"S": "nested"}}}


def test_a_failed_condition_on_an_item_that_fits_is_moto_s_answer(gate: Gate) -> None:
    gate.admin.put_item(TableName=TABLE, Item={"task_id": {"S": "c"}, "status": {"S": "DONE"}})
    answer = _refused(
        gate.dynamodb.update_item,
        TableName=TABLE,
        Key={"task_id": {"S": "c"}},
        UpdateExpression="SET #s = :s",
        ConditionExpression="#s = :running",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "X"}, ":running": {"S": "RUNNING"}},
    )
    assert answer["Error"]["Code"] == "ConditionalCheckFailedException"


@pytest.mark.parametrize("key", ["k" * 2049, "é" * 1025], ids=["2049 bytes", "1025 two-byte"])
def test_a_key_over_2048_bytes_is_refused_as_dynamodb_refuses_it(gate: Gate, key: str) -> None:
    for call, extra in (
        (gate.dynamodb.get_item, {}),
        (
            gate.dynamodb.update_item,
            {"UpdateExpression": "SET a = :v", "ExpressionAttributeValues": {":v": {"S": "v"}}},
        ),
    ):
        answer = _refused(call, TableName=TABLE, Key={"task_id": {"S": key}}, **extra)
        assert answer["Error"] == {
            "Code": "ValidationException",
            "Message": "One or more parameter values were invalid: Size of hashkey has "
            "exceeded the maximum size limit of2048 bytes",
        }


def test_a_key_of_2048_bytes_is_read(gate: Gate) -> None:
    key = "é" * 1024
    gate.admin.put_item(TableName=TABLE, Item={"task_id": {"S": key}, "v": {"S": "x"}})
    item = gate.dynamodb.get_item(TableName=TABLE, Key={"task_id": {"S": key}})["Item"]
    assert item["v"] == {"S": "x"}


def test_a_write_the_gate_cannot_measure_is_moto_s_to_answer(gate: Gate) -> None:
    """Never an error of the gate's own: a malformed write gets what moto answers."""
    body = b'{"TableName": "size-table", "Item": {"task_id": {"S": "a"}, "x": {"N": "abc"}}}'
    through_gate = _post(gate.url, body, gate.writer)
    straight = _post(gate.moto_url, body, gate.writer)
    assert through_gate.status_code == straight.status_code == 400
    assert through_gate.content == straight.content


def test_json_nested_past_the_recursion_limit_is_refused_not_a_crash(gate: Gate) -> None:
    """The gate cannot read which table such a body names, so no role may call it."""
    nested = b'{"L": [' * 100_000 + b'{"S": "x"}' + b"]}" * 100_000
    body = b'{"TableName": "size-table", "Item": {"task_id": {"S": "a"}, "x": ' + nested + b"}}"
    answer = _post(gate.url, body, gate.writer)
    assert answer.status_code == 400
    assert answer.json()["__type"].endswith("#AccessDeniedException")


def _post(url: str, body: bytes, role: Role) -> requests.Response:
    headers = {
        "X-Amz-Target": "DynamoDB_20120810.PutItem",
        "Content-Type": "application/x-amz-json-1.0",
    }
    signed = AWSRequest(method="POST", url=f"{url}/", data=body, headers=headers)
    SigV4Auth(Credentials(role.access_key_id, role.secret_access_key), "dynamodb", REGION).add_auth(
        signed
    )
    return requests.post(f"{url}/", data=body, headers=dict(signed.headers), timeout=30)


# A placeholder whose name is a clause's keyword (``#add``, ``:set``, ``#REMOVE``) is a
# placeholder: the gate must apply, and measure, the plain top-level SET it is part of,
# or an item DynamoDB refuses as over 400 KB reaches moto, which stores it.


KEY_ONLY = {"task_id": {"S": "t1"}}


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
    assert updated_item(KEY_ONLY, update, names, values) == {**KEY_ONLY, "a": {"S": "x"}}


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
