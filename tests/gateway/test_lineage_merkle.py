"""RFC 9162 Merkle trees: our level-array tree and frontier against the RFC's recursive text."""

from __future__ import annotations

import hashlib

import pytest

from gateway.lineage.format.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    Tree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _mth(d: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 2.1.1 writes it (over leaf *data*)."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(d[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def _data(n: int) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 64, 100, 127, 128, 129])
def test_tree_and_frontier_roots_equal_the_rfc_definition(n: int) -> None:
    data = _data(n)
    expected = _mth(data)
    assert Tree([leaf_hash(x) for x in data]).root() == expected
    frontier = Frontier()
    for x in data:
        frontier.append(leaf_hash(x))
    assert frontier.root() == expected
    assert Frontier(frontier.size, frontier.nodes).root() == expected


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert Tree([]).root() == EMPTY_ROOT == Frontier().root()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 31, 33])
def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not(n: int) -> None:
    leaves = [leaf_hash(x) for x in _data(n)]
    tree = Tree(leaves)
    for i in range(n):
        proof = tree.inclusion_proof(i)
        verify_inclusion(leaves[i], i, n, proof, tree.root())
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(b"forged"), i, n, proof, tree.root())
        if n > 1:
            with pytest.raises(ProofError):
                verify_inclusion(leaves[i], (i + 1) % n, n, proof, tree.root())


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9, 17, 32])
def test_consistency_proofs_between_every_pair_of_sizes(n: int) -> None:
    leaves = [leaf_hash(x) for x in _data(n)]
    tree = Tree(leaves)
    for m in range(1, n + 1):
        old_root = Tree(leaves[:m]).root()
        proof = tree.consistency_proof(m, n)
        verify_consistency(m, n, old_root, tree.root(), proof)
        forged = Tree([*leaves[: m - 1], leaf_hash(b"x")]).root()
        with pytest.raises(ProofError):
            verify_consistency(m, n, forged, tree.root(), proof)


def test_frontier_refuses_a_size_that_does_not_fit_its_nodes() -> None:
    with pytest.raises(ProofError):
        Frontier(3, [b"\x00" * 32])
