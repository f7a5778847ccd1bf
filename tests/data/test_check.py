"""Checking every image file before training: real horse2zebra JPEGs with planted bad files."""
import shutil

import pytest

from minigan.data import check
from minigan.data.check import check_images, find_bad_images
from minigan.errors import MiniganError


@pytest.fixture
def planted(data_root, tmp_path):
    """Two folders of real JPEGs (copies) and, among them, a truncated JPEG, a text file named .jpg,
    an empty file and a PNG whose bytes were cut off; returns (lists of files, the bad ones)."""
    sources = sorted((data_root / "horse2zebra" / "trainA").iterdir())[:6]
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    for i, source in enumerate(sources):
        shutil.copy(source, folders[i % 2] / source.name)
    bad = [folders[0] / "truncated.jpg", folders[1] / "notes.jpg", folders[1] / "empty.jpg", folders[0] / "cut.png"]
    bad[0].write_bytes(sources[0].read_bytes()[:3000])
    bad[1].write_text("this is not an image\n")
    bad[2].write_bytes(b"")
    from PIL import Image
    Image.open(sources[1]).save(tmp_path / "whole.png")
    bad[3].write_bytes((tmp_path / "whole.png").read_bytes()[:5000])
    return [sorted(folder.iterdir()) for folder in folders], bad


def test_every_bad_file_is_found_with_its_reason(planted):
    lists, bad = planted
    found = find_bad_images([f for files in lists for f in files])
    assert sorted(found) == sorted(bad)
    assert "truncated" in found[bad[0]] and "cannot identify" in found[bad[1]] and "empty" in found[bad[2]]


def test_one_error_names_them_all_and_nothing_changes(planted):
    lists, bad = planted
    before = [list(files) for files in lists]
    with pytest.raises(MiniganError) as info:
        check_images(lists)
    message = str(info.value)
    assert "\n" not in message and message.startswith("4 of 10 image files cannot be read")
    assert all(str(path) in message for path in bad) and "--skip-bad-images" in message
    assert lists == before


def test_skip_drops_them_with_one_warning(planted, capsys):
    lists, bad = planted
    assert check_images(lists, skip=True) == 4
    assert [f for files in lists for f in files if f in bad] == [] and [len(files) for files in lists] == [3, 3]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: skipping 4 of 10 image files")
    assert check_images(lists) == 0  # what is left passes


def test_many_bad_files_show_the_first_ten_and_a_count(planted, monkeypatch):
    lists, bad = planted
    for i in range(9):
        path = lists[0][0].parent / f"junk{i}.jpg"
        path.write_text("junk")
        lists[0].append(path)
    with pytest.raises(MiniganError, match=r"13 of 19 image files .* and 3 more;") as info:
        check_images(lists)
    assert str(info.value).count(".jpg (") + str(info.value).count(".png (") == check.SHOW
    monkeypatch.setattr(check, "SHOW", 2)
    with pytest.raises(MiniganError, match="and 11 more"):
        check_images(lists)


def test_a_folder_with_no_good_file_left_is_an_error(planted):
    lists, bad = planted
    lists = [[bad[1], bad[2]], lists[0]]
    with pytest.raises(MiniganError, match="none of the 2 images"):
        check_images(lists, skip=True)
