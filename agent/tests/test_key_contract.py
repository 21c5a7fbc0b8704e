"""The agent is deployed apart from the infrastructure, so it keeps its own copy of the
key shape and env names; this pins them to the one definition in trace_infra."""

from trace_agent import task_record, upload
from trace_infra import definitions


def test_the_agent_writes_keys_of_the_shape_the_handler_expects() -> None:
    assert upload.TRACE_KEY_PREFIX == definitions.TRACE_KEY_PREFIX
    assert upload.TRACE_OBJECT_SUFFIX == definitions.TRACE_OBJECT_SUFFIX
    assert upload.TRACE_CONTENT_TYPE == definitions.TRACE_CONTENT_TYPE
    assert upload.TRACE_CHECKSUM_ALGORITHM == definitions.TRACE_CHECKSUM_ALGORITHM
    assert upload.trace_key("u-1", "t-1") == definitions.trace_object_key("u-1", "t-1")
    assert upload.trace_key("u-1", "t-1").startswith(definitions.caller_key_prefix("u-1"))


def test_the_agent_reads_the_env_names_the_infrastructure_sets() -> None:
    assert upload.ENV_TRACE_BUCKET == definitions.ENV_TRACE_BUCKET
    assert task_record.ENV_TASK_TABLE == definitions.ENV_TASK_TABLE
