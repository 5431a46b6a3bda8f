"""The Embeddings page's hover images are served from static/ beside the dashboard; where that
folder cannot be written (an installation owned by another user) the page carries them itself,
as data: URLs, and still fetches nothing from elsewhere."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import plotly
import pytest
from PIL import Image

from explorer.readings.figures import image_grid
from explorer_dashboard import hover


def thumbnails() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 3, 8, 8)).astype(np.uint8)


def test_served_from_static_when_it_can_be_written(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hover, "STATIC", tmp_path / "static")
    url, columns = hover.sprite_sheet(thumbnails())
    assert url.startswith(f"{hover.URL}/sprites/") and columns == 3
    written = np.asarray(Image.open(tmp_path / "static" / url.removeprefix(f"{hover.URL}/")))
    np.testing.assert_array_equal(written, image_grid(thumbnails(), 3, pad=0))
    assert hover.ensure_plotly_js() == f"{hover.URL}/plotly.min.js"
    assert (tmp_path / "static" / "plotly.min.js").stat().st_size > 1_000_000


def test_inline_when_static_cannot_be_written(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # root ignores permissions; a file in the way does not
    monkeypatch.setattr(hover, "STATIC", blocker / "static")
    url, columns = hover.sprite_sheet(thumbnails())
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix) and columns == 3
    inline = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.removeprefix(prefix)))))
    np.testing.assert_array_equal(inline, image_grid(thumbnails(), 3, pad=0))
    script = hover.ensure_plotly_js()
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert base64.b64decode(script.removeprefix("data:text/javascript;base64,")) \
        == source.read_bytes()
