"""S3's composite checksum of a multipart upload (``<base64>-<parts>``, the SHA-256 of the
parts' SHA-256s): a legitimate value no whole body can be checked against, so the
download is proven whole by its gzip stream instead, and never said to be checked."""

from __future__ import annotations

import base64
import hashlib

import pytest


def sha256_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def composite(parts: list[bytes]) -> str:
    """S3's checksum of a multipart upload: the SHA-256 of the parts' SHA-256s, and
    how many parts there were."""
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    return f"{sha256_of(digests)}-{len(parts)}"


def test_a_composite_checksum_is_accepted_and_the_file_saved(bgagent, backend, tmp_path) -> None:
    artifact = backend.artifact
    backend.checksum_sha256 = composite([artifact[:20], artifact[20:]])
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (0, f"Wrote {target}\n")
    assert target.read_bytes() == artifact


def test_a_composite_checksum_still_prints_the_trace(bgagent, backend) -> None:
    backend.checksum_sha256 = composite([backend.artifact])
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, backend.trace_lines, "")


def test_under_a_composite_checksum_a_cut_gzip_is_never_saved(bgagent, backend, tmp_path) -> None:
    """The composite cannot prove the body: the complete gzip stream must."""
    backend.checksum_sha256 = composite([backend.artifact])
    backend.object_body = backend.artifact[:-6]
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 1
    assert "corrupt or not gzipped" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


def test_a_composite_checksum_is_never_taken_for_the_whole_bodys(bgagent, backend, tmp_path):
    """A composite whose digest part happens to be the whole body's SHA-256 proves nothing
    more: a body with a changed byte inside a complete gzip is still refused by gzip's
    own CRC, never passed as checksum-verified."""
    backend.checksum_sha256 = f"{sha256_of(backend.artifact)}-1"
    body = bytearray(backend.artifact)
    body[-5] ^= 1  # in the gzip trailer's length: the CRC and length check fail
    backend.object_body = bytes(body)
    result = bgagent("trace", "download", "t-1", "-o", str(tmp_path / "t.gz"))
    assert result.exit_code == 1
    assert "corrupt or not gzipped" in result.stderr


@pytest.mark.parametrize(
    "checksum",
    [
        f"{'A' * 43}=-0",
        f"{'A' * 43}=-10001",
        f"{'A' * 43}=-",
        f"{'A' * 43}=-x",
        f"{'A' * 43}=-01",
        f"{'A' * 43}=--2",
        f"{'A' * 42}=-2",
        f"{'A' * 43}=-2-2",
        f"{'A' * 43}=-\uff12",  # a fullwidth digit two
        f"-2{'A' * 43}=",
        f"{'A' * 43}= -2",
        f"{'A' * 43}=-2\n",
    ],
)
def test_a_checksum_that_is_neither_form_is_refused_as_malformed(
    bgagent, backend, tmp_path, checksum: str
) -> None:
    backend.checksum_sha256 = checksum
    result = bgagent("trace", "download", "t-1", "-o", str(tmp_path / "t.gz"))
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The API answered with a malformed checksum; please report this.\n",
    )


def test_a_composite_of_ten_thousand_parts_is_accepted(bgagent, backend, tmp_path) -> None:
    backend.checksum_sha256 = f"{sha256_of(b'parts')}-10000"
    assert bgagent("trace", "download", "t-1", "-o", str(tmp_path / "t.gz")).exit_code == 0
