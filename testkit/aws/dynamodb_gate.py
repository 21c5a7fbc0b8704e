"""The DynamoDB endpoint as the code under test sees it: a gate in front of moto that
authorizes every call as DynamoDB does.

Each call must be SigV4-signed (checked with botocore's own signer) by a known
role whose policy (``testkit.aws.auth``) allows the call's action
(``dynamodb:<Operation>``, from ``X-Amz-Target``) on the table it names, or the
index of that table it queries. A denied call answers HTTP 400 with an
``AccessDeniedException``, as DynamoDB does. What passes goes to moto unchanged.

It also holds writes to DynamoDB's item size limit, 400 KB (``ITEM_SIZE_LIMIT``),
measured by DynamoDB's documented rules (``item_size``): moto measures by rules of
its own (no list or map overhead, a number as its text) and refuses from 405,000 bytes,
and not at all an update of a nested attribute. A PutItem whose item is larger, or an
UpdateItem whose resulting item would be, answers 400 ``ValidationException`` with
DynamoDB's message. For UpdateItem the gate reads the item from moto and applies the
update's SET (to a value, another attribute or ``if_not_exists``) and REMOVE of
top-level attributes; an update of another form (nested paths, ``list_append``,
arithmetic, ADD, DELETE, ``AttributeUpdates``) is passed to moto unmeasured. The size
is checked before the condition; writes through the gate are serialized, so the item
read is the one the write changes.

A ``Key`` (GetItem, UpdateItem, DeleteItem) holding a value over 2,048 bytes, which
DynamoDB refuses as a partition key, answers 400 ``ValidationException`` as DynamoDB
does; moto refuses it only on PutItem. (A sort key's 1,024-byte limit is not checked.)
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from testkit.aws import local_server
from testkit.aws.auth import ResourceArns, Roles, verify_request

_ERROR_STATUS = {"InvalidAccessKeyId": "UnrecognizedClientException"}

ITEM_SIZE_LIMIT = 400 * 1024
# DynamoDB's words, as moto (which copies them from DynamoDB) gives them too.
ITEM_TOO_LARGE = {
    "PutItem": "Item size has exceeded the maximum allowed size",
    "UpdateItem": "Item size to update has exceeded the maximum allowed size",
}
_TARGET_PREFIX = "DynamoDB_20120810."
PARTITION_KEY_LIMIT = 2048
# DynamoDB's words, without the space after "of", as moto copies them.
KEY_TOO_LARGE = (
    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum "
    f"size limit of{PARTITION_KEY_LIMIT} bytes"
)
_KEYED = ("GetItem", "UpdateItem", "DeleteItem")
# What a malformed request raises while it is measured (a number that is none, JSON
# nested past Python's recursion limit...): moto then answers it as it does.
_UNMEASURABLE = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError)


class DynamoDbGate(local_server.LocalServer):
    def __init__(self, upstream: str | local_server.WsgiApp, *, roles: Roles, region: str) -> None:
        # moto's server (a URL), or moto's app in this process
        self._upstream = upstream.rstrip("/") if isinstance(upstream, str) else upstream
        self._roles = roles
        self._region = region
        self._writes = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        request = local_server.read_request(environ)
        split, headers, lower, body = request.target, request.headers, request.lower, request.body
        verdict = verify_request(request, self._roles, region=self._region, service="dynamodb")
        if verdict.error:
            code = _ERROR_STATUS.get(verdict.error, verdict.error)
            return _error(start_response, code, f"The request was refused: {verdict.error}")
        assert verdict.role is not None
        operation = lower.get("x-amz-target", "").rpartition(".")[2]
        action = f"dynamodb:{operation}"
        resource = self._resource(body)
        if not verdict.role.allows(action, resource):
            self._roles.refused(verdict.role, action, resource)
            return _error(
                start_response,
                "AccessDeniedException",
                f"User: {verdict.role.name} is not authorized to perform: {action} "
                f"on resource: {resource}",
            )
        if operation in _KEYED and _key_too_large(body):
            return _error(start_response, "ValidationException", KEY_TOO_LARGE)
        if operation in ITEM_TOO_LARGE:
            with self._writes:
                if self._too_large(operation, headers, body):
                    return _error(start_response, "ValidationException", ITEM_TOO_LARGE[operation])
                upstream = local_server.forward(
                    self._upstream, request.method, split.geturl(), headers, body
                )
                answer = upstream.read()  # within the lock: the write is done
            start_response(f"{upstream.status} {upstream.reason}", upstream.headers)
            return [answer]
        upstream = local_server.forward(
            self._upstream, request.method, split.geturl(), headers, body
        )
        start_response(f"{upstream.status} {upstream.reason}", upstream.headers)
        return upstream.stream()

    def _too_large(self, operation: str, headers: dict[str, str], body: bytes) -> bool:
        """Whether the item the write leaves would pass DynamoDB's limit; False for a
        request the gate cannot measure (moto then answers it as it does)."""
        try:
            request = json.loads(body)
            if operation == "PutItem":
                return item_size(request["Item"]) > ITEM_SIZE_LIMIT
            update = request.get("UpdateExpression")
            if not isinstance(update, str) or "AttributeUpdates" in request:
                return False
            current = self._current_item(headers, request["TableName"], request["Key"])
            after = updated_item(
                current if current is not None else dict(request["Key"]),
                update,
                request.get("ExpressionAttributeNames") or {},
                request.get("ExpressionAttributeValues") or {},
            )
        except _UNMEASURABLE:
            return False  # malformed: moto answers it
        return after is not None and item_size(after) > ITEM_SIZE_LIMIT

    def _current_item(self, headers: dict[str, str], table: str, key: Any) -> dict[str, Any] | None:
        # moto reads the region from the caller's Authorization header, not its signature.
        read = {
            **headers,
            "X-Amz-Target": f"{_TARGET_PREFIX}GetItem",
            "Content-Type": "application/x-amz-json-1.0",
        }
        body = json.dumps({"TableName": table, "Key": key, "ConsistentRead": True}).encode()
        upstream = local_server.forward(self._upstream, "POST", "/", read, body)
        answer = upstream.read()
        if upstream.status != 200:
            raise ValueError(f"GetItem answered {upstream.status}")
        item = json.loads(answer).get("Item")
        return item if isinstance(item, dict) else None

    def _resource(self, body: bytes) -> str:
        try:
            request = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            request = {}
        table = str(request.get("TableName", "")) if isinstance(request, dict) else ""
        arn = ResourceArns("", table, self._region).table_arn(table)
        index = request.get("IndexName") if isinstance(request, dict) else None
        return f"{arn}/index/{index}" if index else arn


def _error(start_response: local_server.StartResponse, code: str, message: str) -> list[bytes]:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    ).encode()
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _key_too_large(body: bytes) -> bool:
    try:
        key = json.loads(body)["Key"]
        return any(value_size(value) > PARTITION_KEY_LIMIT for value in key.values())
    except _UNMEASURABLE:
        return False  # malformed: moto answers it


# --- DynamoDB's item size -------------------------------------------------------------


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB documents it ("Item sizes and formats"): each
    attribute's name in UTF-8 bytes plus its value's size."""
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def value_size(value: Mapping[str, Any]) -> int:
    """One attribute value's size: a string its UTF-8 bytes, a number 1 byte per two
    significant digits plus 1, binary its raw bytes, null and booleans 1 byte; a list or
    map 3 bytes plus 1 per element, plus its elements (and a map's names); a set the sum
    of its members."""
    ((kind, content),) = value.items()
    if kind == "S":
        return _utf8(content)
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(base64.b64decode(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(member) for member in content)
    if kind == "NS":
        return sum(_number_size(member) for member in content)
    if kind == "BS":
        return sum(len(base64.b64decode(member)) for member in content)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + value_size(v) for name, v in content.items())
    raise ValueError(f"no DynamoDB type {kind!r}")


def _utf8(text: str) -> int:
    if not isinstance(text, str):
        raise TypeError("not text")
    return len(text.encode("utf-8", "surrogatepass"))


def _number_size(text: str) -> int:
    # Leading and trailing zeroes do not count; nor do the sign and the exponent. (Not
    # normalize(): it rounds to the context's 28 digits.)
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(f"{text!r} is no DynamoDB number")
    digits = "".join(map(str, number.as_tuple().digits)).strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


# A keyword, not a placeholder named as one (#add, :set).
_CLAUSE = re.compile(r"(?<![#:])\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_NAME = re.compile(r"#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*")
_IF_NOT_EXISTS = re.compile(r"if_not_exists\s*\(\s*(?P<path>[^,\s]+)\s*,\s*(?P<value>:\w+)\s*\)")


def updated_item(
    item: Mapping[str, Any],
    update: str,
    names: Mapping[str, str],
    values: Mapping[str, Any],
) -> dict[str, Any] | None:
    """``item`` as ``update`` leaves it, or None for an update of a form this does not
    apply (see the module's docstring). Operands read the item as it was, as in
    DynamoDB."""
    parts = _CLAUSE.split(update)
    if parts[0].strip():
        return None
    after = dict(item)
    for clause, actions in zip(parts[1::2], parts[2::2], strict=True):
        for action in _actions(actions):
            if clause.upper() == "REMOVE":
                name = _top_level(action, names)
                if name is None:
                    return None
                after.pop(name, None)
                continue
            if clause.upper() != "SET":
                return None
            target, equals, operand = action.partition("=")
            name = _top_level(target.strip(), names)
            value = _operand(operand.strip(), item, names, values)
            if not equals or name is None or value is None:
                return None
            after[name] = value
    return after


def _actions(clause: str) -> list[str]:
    """A clause's actions: split at its commas outside parentheses."""
    actions, depth, start = [], 0, 0
    for at, char in enumerate(clause):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            actions.append(clause[start:at].strip())
            start = at + 1
    actions.append(clause[start:].strip())
    return actions


def _top_level(path: str, names: Mapping[str, str]) -> str | None:
    if not _NAME.fullmatch(path):
        return None  # a nested path, or no path
    return names[path] if path.startswith("#") else path


def _operand(
    operand: str, item: Mapping[str, Any], names: Mapping[str, str], values: Mapping[str, Any]
) -> Any:
    if re.fullmatch(r":\w+", operand):
        return values[operand]
    if (fallback := _IF_NOT_EXISTS.fullmatch(operand)) is not None:
        name = _top_level(fallback["path"], names)
        if name is None:
            return None
        return item[name] if name in item else values[fallback["value"]]
    name = _top_level(operand, names)
    return item.get(name) if name is not None else None
