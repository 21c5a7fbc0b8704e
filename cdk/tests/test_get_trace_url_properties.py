"""The handler's guards as a property: whatever the caller, the record and the stored
location, a link is only ever signed for the configured bucket, under the caller's own
``traces/<caller>/`` prefix, for a task the caller owns."""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_infra.handlers.get_trace_url import HandlerDeps, handle

BUCKET = "trace-bucket"
LOOK_ALIKES = [
    "alice",
    "alice2",
    "alice ",
    " alice",
    "ALICE",
    "alicé",
    "al/ice",
    "alice/",
    "..",
    ".",
    "",
    "%2Falice",
    "alice%2F..",
    "bob",
]
names = st.sampled_from(LOOK_ALIKES) | st.text(min_size=0, max_size=8)
segments = st.sampled_from(["", ".", "..", "%2F", "t1.jsonl.gz", "x", "é", " "]) | st.text(
    max_size=6
)
keys = st.one_of(
    st.builds(lambda owner, rest: f"traces/{owner}/{rest}", names, segments),
    st.builds(
        lambda owner, parts: f"traces/{owner}/" + "/".join(parts),
        names,
        st.lists(segments, min_size=1, max_size=4),
    ),
    st.text(max_size=30),
)
buckets = st.sampled_from([BUCKET, f"{BUCKET}2", "Trace-bucket", f"{BUCKET} ", "", "other"])
uris = st.one_of(
    st.builds(lambda b, k: f"s3://{b}/{k}", buckets, keys),
    st.text(max_size=40),
)


class FakeTable:
    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": self.item} if self.item is not None else {}


class RecordingS3:
    def __init__(self) -> None:
        self.signed: list[tuple[str, str]] = []

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {}

    def generate_presigned_url(self, _op: str, Params: dict[str, str], ExpiresIn: int) -> str:
        self.signed.append((Params["Bucket"], Params["Key"]))
        return "https://signed.example.test/"


CASES = {"run": 0, "signed": 0}
EXAMPLES = 2000


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """Half the time the record is the caller's own and its key sits near their prefix,
    so the generator reaches signed links often, not only refusals."""
    caller = draw(names)
    owner = draw(st.just(caller) | names)
    look_alike = st.sampled_from(["", "", "", "2", " ", "/..", "%2F", "/", "é"])
    near_own_prefix = st.builds(
        lambda b, alike, parts: f"s3://{b}/traces/{caller}{alike}/" + "/".join(parts),
        st.just(BUCKET) | buckets,
        look_alike,
        st.lists(st.just("t1.jsonl.gz") | segments, min_size=1, max_size=3),
    )
    uri = draw(st.none() | near_own_prefix | uris)
    return caller, owner, uri


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def check_one_request(request: tuple[str, str, str | None]) -> None:
    caller, owner, uri = request
    item: dict[str, Any] = {"task_id": {"S": "t1"}, "user_id": {"S": owner}}
    if uri is not None:
        item["trace_s3_uri"] = {"S": uri}
    s3 = RecordingS3()
    deps = HandlerDeps(s3=s3, dynamodb=FakeTable(item), table_name="tasks", bucket=BUCKET)
    event = {
        "pathParameters": {"task_id": "t1"},
        "requestContext": {"requestId": "r", "authorizer": {"claims": {"sub": caller}}},
    }

    result = handle(event, deps)

    CASES["run"] += 1
    assert result["statusCode"] in {200, 401, 403, 404, 500}
    if result["statusCode"] != 200:
        assert s3.signed == []
        assert "url" not in json.loads(result["body"]).get("data", {})
        return
    CASES["signed"] += 1
    [(bucket, key)] = s3.signed
    assert caller
    assert caller == owner
    assert bucket == BUCKET
    assert key.startswith(f"traces/{caller}/")
    assert "/" not in caller
    assert all(part not in ("", ".", "..") for part in key.split("/"))


def test_a_link_is_only_signed_under_the_callers_own_prefix() -> None:
    CASES.update(run=0, signed=0)
    check_one_request()
    print(f"handler property: {CASES['run']} requests, {CASES['signed']} signed")
    # A generator that never reached a signed link, or never a refusal, proves nothing.
    assert CASES["run"] >= EXAMPLES // 2
    assert 0 < CASES["signed"] < CASES["run"]
