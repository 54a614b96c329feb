from __future__ import annotations

from seaway.data.tree import FileEntry, decode_manifest, encode_manifest, tree_hash

A = "a" * 64
B = "b" * 64


def test_tree_hash_ignores_order_and_depends_on_content_and_names() -> None:
    one = [FileEntry("x/y/1.bin", A, 3), FileEntry("x/2.bin", B, 4), FileEntry("top", A, 3)]
    assert tree_hash(one) == tree_hash(list(reversed(one)))
    renamed = [FileEntry("x/y/1.bin", A, 3), FileEntry("x/3.bin", B, 4), FileEntry("top", A, 3)]
    assert tree_hash(one) != tree_hash(renamed)
    changed = [FileEntry("x/y/1.bin", B, 3), FileEntry("x/2.bin", B, 4), FileEntry("top", A, 3)]
    assert tree_hash(one) != tree_hash(changed)


def test_moving_a_file_between_folders_changes_the_hash() -> None:
    flat = [FileEntry("a/b", A, 1)]
    nested = [FileEntry("a", A, 1)]
    assert tree_hash(flat) != tree_hash(nested)


def test_manifest_round_trip_is_sorted() -> None:
    entries = [FileEntry("b", B, 2), FileEntry("a/c", A, 1)]
    decoded = decode_manifest(encode_manifest(entries))
    assert [e.path for e in decoded] == ["a/c", "b"]
    assert decoded[1] == FileEntry("b", B, 2)


def test_every_file_at_any_depth_counts() -> None:
    deep = [FileEntry("a/b/c/d.bin", A, 1), FileEntry("a/b/c/e.bin", B, 1)]
    changed = [FileEntry("a/b/c/d.bin", A, 1), FileEntry("a/b/c/e.bin", A, 1)]
    assert tree_hash(deep) != tree_hash(changed)
    assert tree_hash(deep) != tree_hash([])
    sizes = [FileEntry("a/b/c/d.bin", A, 2), FileEntry("a/b/c/e.bin", B, 1)]
    assert tree_hash(deep) != tree_hash(sizes)
