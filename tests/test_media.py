"""One answer to "which files are frames, in which order" for training data and prediction."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tracknet_cli.data.clips import list_images
from tracknet_cli.media.files import image_files, natural_key
from tracknet_cli.predict.sources import open_source


def test_data_and_predict_read_the_same_frames_in_the_same_order(tmp_path: Path) -> None:
    names = ["cam2_0001.jpg", "cam1_0010.png", "cam1_0002.webp", "cam1_0001.tif", ".hidden.jpg", "notes.txt"]
    for name in names:
        if name.endswith(".txt"):
            (tmp_path / name).write_text("x")
        else:
            Image.new("RGB", (8, 6)).save(tmp_path / name)
    expected = ["cam1_0001.tif", "cam1_0002.webp", "cam1_0010.png", "cam2_0001.jpg"]
    assert [p.name for p in image_files(tmp_path)] == expected
    assert [p.name for p in list_images(tmp_path)] == expected
    source = open_source(tmp_path)[0]
    assert [f.name for f in source.frames()] == expected


def test_natural_key_orders_numbers_by_value() -> None:
    assert sorted(["f10.jpg", "F2.jpg", "f1.jpg"], key=natural_key) == ["f1.jpg", "F2.jpg", "f10.jpg"]
