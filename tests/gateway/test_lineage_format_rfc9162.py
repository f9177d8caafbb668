"""The lineage Merkle tree against the published RFC 6962 / RFC 9162 reference test data.

Our tree uses RFC 9162's hashing (section 2.1.1): SHA-256, leaf = H(0x00 || data), node =
H(0x01 || left || right), the empty tree = H(""). So the reference vectors of Certificate
Transparency apply as they are: the 8 leaves below, the root of every tree size 1..8, and the
inclusion and consistency proofs between them (the values of the CT reference
implementations' test data, e.g. transparency-dev/merkle proof/verify_test.go). Each proof is
checked three ways: our prover makes exactly this proof, our verifier accepts it, and every
corruption of it (a flipped bit, a wrong index or size, a hash removed, added or swapped) fails.
"""

from __future__ import annotations

import pytest

from gateway.lineage.format.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    Tree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ROOTS = {  # tree size -> root
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = [  # (leaf index, 0-based; tree size; PATH(index, D[0:size]))
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [  # (old size; new size; PROOF(old, D[0:new]))
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
OTHER = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
HASHES = [leaf_hash(x) for x in LEAVES]
TREE = Tree(HASHES)


def _root(size: int) -> bytes:
    return bytes.fromhex(ROOTS[size])


def _flipped(proof: list[bytes], i: int) -> list[bytes]:
    wrong = list(proof)
    wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
    return wrong


def test_the_empty_tree_and_every_size_give_the_reference_roots() -> None:
    assert EMPTY_ROOT.hex() == EMPTY == Tree([]).root().hex() == Frontier().root().hex()
    frontier = Frontier()
    for size in range(1, 9):
        frontier.append(HASHES[size - 1])
        assert Tree(HASHES[:size]).root().hex() == ROOTS[size], size
        assert frontier.root().hex() == ROOTS[size], size
        assert TREE.subtree_root(0, size).hex() == ROOTS[size], size


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_proofs_are_the_reference_proofs(
    index: int, size: int, expected: list[str]
) -> None:
    assert [p.hex() for p in TREE.inclusion_proof(index, size)] == expected
    verify_inclusion(HASHES[index], index, size, [bytes.fromhex(p) for p in expected], _root(size))


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, expected: list[str]) -> None:
    proof, root, leaf = [bytes.fromhex(p) for p in expected], _root(size), HASHES[index]
    probes: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, OTHER),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
    ]
    probes += [(leaf, index, size, _flipped(proof, i), root) for i in range(len(proof))]
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], OTHER, *proof[1:]], root))
    for leaf_, index_, size_, proof_, root_ in probes:
        with pytest.raises(ProofError):
            verify_inclusion(leaf_, index_, size_, proof_, root_)


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_consistency_proofs_are_the_reference_proofs(
    old: int, new: int, expected: list[str]
) -> None:
    assert [p.hex() for p in TREE.consistency_proof(old, new)] == expected
    verify_consistency(old, new, _root(old), _root(new), [bytes.fromhex(p) for p in expected])


@pytest.mark.parametrize(("old", "new", "expected"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, expected: list[str]) -> None:
    proof, r1, r2 = [bytes.fromhex(p) for p in expected], _root(old), _root(new)
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [(old, new, r1, r2, _flipped(proof, i)) for i in range(len(proof))]
    for old_, new_, r1_, r2_, proof_ in probes:
        with pytest.raises(ProofError):
            verify_consistency(old_, new_, r1_, r2_, proof_)


def test_every_pair_of_reference_sizes_has_a_consistency_proof_that_verifies() -> None:
    """Beyond the listed vectors: every (old, new) over the 8 reference leaves, against the
    reference roots."""
    for new in range(1, 9):
        for old in range(1, new + 1):
            proof = TREE.consistency_proof(old, new)
            verify_consistency(old, new, _root(old), _root(new), proof)
            for index in range(new):
                verify_inclusion(
                    HASHES[index], index, new, TREE.inclusion_proof(index, new), _root(new)
                )
