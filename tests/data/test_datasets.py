"""Dataset versions through the library, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.data import datasets as ds
from seaway.data.checkout import checkout
from seaway.data.maintenance import gc, verify
from seaway.errors import InputError, NotFound, UsageError
from seaway.project import Project
from tests.data.conftest import age, make_tree, write_random


def test_add_snapshots_a_folder_and_checkout_restores_it(project: Project, tmp_path: Path) -> None:
    files = make_tree(project.root / "data", 30)
    result = ds.add(project, "raw", [Path("data")])
    assert result.created
    v = result.version
    assert (v.ref, v.n_files, v.size) == ("raw@1", 30, 30 * 2048)
    assert v.sources == [{"path": "data", "kind": "dir", "prefix": ""}]

    out = tmp_path / "out"
    res = checkout(project, "raw@1", out)
    assert res.written == 30
    for rel, content in files.items():
        assert (out / rel).read_bytes() == content


def test_identical_content_returns_the_existing_version(project: Project) -> None:
    make_tree(project.root / "data", 5)
    first = ds.add(project, "raw", [Path("data")])
    again = ds.add(project, "raw", [Path("data")])
    assert not again.created
    assert again.version.number == first.version.number == 1
    assert [v.number for v in ds.log(project, "raw")] == [1]


def test_versions_are_numbered_and_addressable_by_hash_prefix(project: Project) -> None:
    write_random(project.root / "a.bin", 100, 1)
    v1 = ds.add(project, "one", [Path("a.bin")]).version
    write_random(project.root / "a.bin", 100, 2)
    v2 = ds.add(project, "one", [Path("a.bin")]).version
    assert (v1.number, v2.number) == (1, 2)
    assert ds.get_version(project, "one").number == 2
    assert ds.get_version(project, "one@latest").number == 2
    assert ds.get_version(project, "one@1").tree_hash == v1.tree_hash
    assert ds.get_version(project, f"one@{v1.tree_hash[:8]}").number == 1
    with pytest.raises(NotFound, match="no version 7"):
        ds.get_version(project, "one@7")
    with pytest.raises(NotFound, match="did you mean 'one'"):
        ds.get_version(project, "onr@1")
    with pytest.raises(UsageError, match="bad version"):
        ds.get_version(project, "one@zz")


def test_several_paths_are_stored_under_their_names(project: Project, tmp_path: Path) -> None:
    write_random(project.root / "train.csv", 10, 1)
    make_tree(project.root / "images", 3)
    v = ds.add(project, "mixed", [Path("train.csv"), Path("images")]).version
    paths = sorted(e.path for e in ds.read_manifest(project, v))
    assert paths[0].startswith("images/") and paths[-1] == "train.csv"
    checkout(project, "mixed", tmp_path / "o")
    assert (tmp_path / "o" / "train.csv").exists()


def test_name_clash_between_paths_is_refused(project: Project) -> None:
    write_random(project.root / "a" / "x.bin", 10, 1)
    write_random(project.root / "b" / "x.bin", 10, 2)
    with pytest.raises(UsageError, match=r"both be stored as 'x\.bin'"):
        ds.add(project, "clash", [Path("a/x.bin"), Path("b/x.bin")])


def test_missing_path_is_a_clear_input_error_and_records_nothing(project: Project) -> None:
    with pytest.raises(InputError, match="nope does not exist"):
        ds.add(project, "raw", [Path("nope")])
    assert ds.list_datasets(project) == []


def test_bad_dataset_name(project: Project) -> None:
    write_random(project.root / "a.bin", 10, 1)
    with pytest.raises(UsageError, match="invalid dataset name"):
        ds.add(project, "../evil", [Path("a.bin")])


def test_status_reports_changes_without_writing(project: Project) -> None:
    make_tree(project.root / "data", 12)
    ds.add(project, "raw", [Path("data")])
    (st,) = ds.status(project, "raw")
    assert st.state == "unchanged"

    write_random(project.root / "data/d0/s0/f0.bin", 2048, 999)  # same size, new content
    (project.root / "data/d1/s1/f1.bin").unlink()
    write_random(project.root / "data/new.bin", 5, 1)
    index_db = project.state_dir / "index.db"
    before = index_db.stat().st_mtime_ns
    blobs_before = set(project.blobs.iter_digests())
    (st,) = ds.status(project, "raw")
    assert st.state == "modified"
    got = {(c.path, c.change) for c in st.changes}
    assert got == {
        ("d0/s0/f0.bin", "modified"),
        ("d1/s1/f1.bin", "removed"),
        ("new.bin", "added"),
    }
    assert index_db.stat().st_mtime_ns == before
    assert set(project.blobs.iter_digests()) == blobs_before


def test_status_without_a_name_covers_every_dataset_added_here(project: Project) -> None:
    write_random(project.root / "a.bin", 10, 1)
    write_random(project.root / "b.bin", 10, 2)
    ds.add(project, "a", [Path("a.bin")])
    ds.add(project, "b", [Path("b.bin")])
    (project.root / "b.bin").unlink()
    states = {s.dataset: s.state for s in ds.status(project)}
    assert states == {"a": "unchanged", "b": "missing"}


def test_stat_cache_spares_rereading_unchanged_files(project: Project) -> None:
    make_tree(project.root / "data", 20)
    age(project.root / "data")
    first = ds.add(project, "raw", [Path("data")])
    assert first.hashed == 20
    write_random(project.root / "data/d0/s0/f0.bin", 2048, 4242)
    age(project.root / "data/d0/s0/f0.bin")
    second = ds.add(project, "raw", [Path("data")])
    assert second.hashed == 1
    assert second.stored == 1
    assert second.version.number == 2


def test_a_change_that_keeps_size_and_mtime_but_not_inode_is_seen(project: Project) -> None:
    path = project.root / "data" / "a.bin"
    write_random(path, 64, 1)
    age(path)
    ds.add(project, "raw", [Path("data")])
    st = path.stat()
    replacement = project.root / "data" / "tmp"
    write_random(replacement, 64, 2)
    import os

    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    (s,) = ds.status(project, "raw")
    assert s.state == "modified"


def test_diff_between_versions(project: Project) -> None:
    make_tree(project.root / "data", 6)
    ds.add(project, "raw", [Path("data")])
    write_random(project.root / "data/d0/s0/f0.bin", 100, 7)
    (project.root / "data/d1/s1/f1.bin").unlink()
    write_random(project.root / "data/extra.bin", 10, 8)
    ds.add(project, "raw", [Path("data")])
    d = ds.diff(project, "raw", "1", "2")
    assert d.counts() == {"added": 1, "removed": 1, "modified": 1}
    modified = next(c for c in d.changes if c.change == "modified")
    assert (modified.path, modified.old_size, modified.new_size) == ("d0/s0/f0.bin", 2048, 100)
    assert ds.diff(project, "raw").to_dict()["summary"] == d.counts()
    with pytest.raises(UsageError, match="first version"):
        ds.diff(project, "raw", None, "1")


def test_checkout_refuses_to_clobber_and_force_overwrites(project: Project, tmp_path: Path) -> None:
    write_random(project.root / "data" / "a.bin", 50, 1)
    ds.add(project, "raw", [Path("data")])
    dest = tmp_path / "dest"
    write_random(dest / "a.bin", 50, 2)
    with pytest.raises(UsageError, match="differ from raw@1"):
        checkout(project, "raw@1", dest)
    assert checkout(project, "raw@1", dest, force=True).written == 1
    assert (dest / "a.bin").read_bytes() == (project.root / "data" / "a.bin").read_bytes()
    assert checkout(project, "raw@1", dest).unchanged == 1


def test_verify_finds_corrupt_and_missing_blobs(project: Project) -> None:
    make_tree(project.root / "data", 4)
    v = ds.add(project, "raw", [Path("data")]).version
    assert verify(project).ok
    entries = ds.read_manifest(project, v)
    corrupt, missing = entries[0].digest, entries[1].digest
    path = project.blobs.path(corrupt)  # type: ignore[attr-defined]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    project.blobs.delete(missing)
    report = verify(project)
    assert not report.ok
    states = {p.digest: p.state for p in report.problems}
    assert states == {corrupt: "corrupt", missing: "missing"}
    assert report.problems[0].used_by == ["raw@1"]


def test_gc_removes_only_unreferenced_blobs(project: Project) -> None:
    make_tree(project.root / "data", 4)
    ds.add(project, "raw", [Path("data")])
    orphan = project.blobs.put_bytes(b"nobody uses me")
    dry = gc(project, dry_run=True, grace_seconds=0)
    assert dry.removed == 1 and project.blobs.has(orphan)
    young = gc(project, grace_seconds=3600)
    assert young.removed == 0 and young.spared_recent == 1
    done = gc(project, grace_seconds=0)
    assert done.removed == 1 and not project.blobs.has(orphan)
    assert verify(project).ok


def test_list_and_log(project: Project) -> None:
    write_random(project.root / "a.bin", 10, 1)
    ds.add(project, "a", [Path("a.bin")], message="first")
    write_random(project.root / "a.bin", 10, 2)
    ds.add(project, "a", [Path("a.bin")], message="second")
    write_random(project.root / "b.bin", 10, 3)
    ds.add(project, "b", [Path("b.bin")])
    summaries = {s.name: s for s in ds.list_datasets(project)}
    assert summaries["a"].versions == 2 and summaries["a"].latest is not None
    assert summaries["a"].latest.message == "second"
    assert summaries["b"].versions == 1
    assert [v.message for v in ds.log(project, "a")] == ["second", "first"]
    with pytest.raises(NotFound):
        ds.log(project, "zzz")


def test_large_file_round_trip(project: Project, tmp_path: Path) -> None:
    big = project.root / "big.bin"
    write_random(big, 20 * 1024 * 1024 + 3, 5)
    v = ds.add(project, "big", [Path("big.bin")]).version
    checkout(project, "big@1", tmp_path / "o")
    assert (tmp_path / "o" / "big.bin").read_bytes() == big.read_bytes()
    assert v.size == big.stat().st_size


def test_hardlink_mode_shares_the_inode_and_protects_the_file(project: Project) -> None:
    path = project.root / "data" / "a.bin"
    write_random(path, 64, 1)
    v = ds.add(project, "raw", [Path("data")], link="hardlink").version
    (entry,) = ds.read_manifest(project, v)
    blob = project.blobs.path(entry.digest)  # type: ignore[attr-defined]
    assert blob.stat().st_ino == path.stat().st_ino
    assert not path.stat().st_mode & 0o222
