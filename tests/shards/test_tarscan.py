"""The fast tar scanner of the reader's hot path agrees with tarfile and detects damage."""

from __future__ import annotations

import pytest

from shards.tario import read_members, write_members
from shards.tarscan import TarDamage, iter_tar

MEMBERS = [
    ("a_clip0000.0000.jpg", b"x" * 1000),
    ("a_clip0000.json", b"{}"),
    ("b" * 120 + ".json", b"long name"),  # > 100 chars: a GNU long-name record
    ("empty.txt", b""),
]


def test_members_equal_tarfiles_reading(tmp_path):
    path = tmp_path / "t.tar"
    write_members(path, MEMBERS)
    assert list(iter_tar(path)) == list(read_members(path)) == MEMBERS


def test_a_flipped_header_byte_is_damage(tmp_path):
    path = tmp_path / "t.tar"
    write_members(path, MEMBERS)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01  # inside the first member's name: its header checksum fails
    path.write_bytes(bytes(data))
    with pytest.raises(TarDamage, match="checksum"):
        list(iter_tar(path))


@pytest.mark.parametrize("keep", [700, 512 + 300, 2048 + 100])
def test_truncation_is_damage(tmp_path, keep):
    path = tmp_path / "t.tar"
    write_members(path, MEMBERS)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(TarDamage, match="truncated"):
        list(iter_tar(path))
