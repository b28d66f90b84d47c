"""`jti`s: 128 random bits each, unique, and never the same in a forked child as in its parent."""

from __future__ import annotations

import base64
import os

from certbound.server.tokens.minter import _RandomBlocks, new_jti


def test_jtis_are_128_bit_base64url_and_unique() -> None:
    jtis = [new_jti() for _ in range(3000)]  # crosses several 4 KiB blocks
    assert len(set(jtis)) == len(jtis)
    for jti in jtis[:50]:
        assert len(jti) == 22
        assert len(base64.urlsafe_b64decode(jti + "==")) == 16


def test_blocks_hand_out_every_byte_once() -> None:
    blocks = _RandomBlocks()
    taken = [blocks.take(16) for _ in range(_RandomBlocks.BLOCK // 16)]
    assert b"".join(taken) == blocks._block  # the whole first block, in order, nothing twice
    assert blocks.take(16) != taken[0]
    assert len(blocks.take(5000)) == 5000  # larger than a block


def test_a_forked_child_does_not_repeat_its_parents_jtis() -> None:
    new_jti()  # a block is in use in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next jtis, to the parent
        try:
            os.write(write, " ".join(new_jti() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    parent = {new_jti() for _ in range(4)}
    assert len(child) == 4
    assert not child & parent
