import dataclasses

import pytest

from trace_infra.definitions import (
    GET_TRACE_URL,
    GET_TRACE_URL_GRANTS,
    TASK_TABLE,
    TRACE_BUCKET,
    caller_key_prefix,
    trace_object_key,
)


def test_trace_keys_live_under_the_owners_prefix() -> None:
    assert trace_object_key("u-1", "t-1") == "traces/u-1/t-1.jsonl.gz"
    assert caller_key_prefix("u-1") == "traces/u-1/"


def test_the_task_table_declares_every_key_attribute_once_as_a_string() -> None:
    assert TASK_TABLE.key_attributes() == {
        "task_id": "S",
        "user_id": "S",
        "status_created_at": "S",
        "status": "S",
        "created_at": "S",
        "idempotency_key": "S",
    }


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (TRACE_BUCKET, "expiration_days"),
        (TASK_TABLE, "partition_key"),
        (GET_TRACE_URL, "handler"),
        (GET_TRACE_URL_GRANTS[0], "scope"),
        (TASK_TABLE.global_indexes[0], "sort_key"),
    ],
)
def test_the_one_definition_cannot_be_changed_at_run_time(definition: object, field: str) -> None:
    """The constructs, the handler's wiring and the local stack all read these objects."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(definition, field, getattr(definition, field))
