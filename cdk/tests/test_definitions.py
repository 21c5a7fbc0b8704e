from trace_infra.definitions import TASK_TABLE, caller_key_prefix, trace_object_key


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
