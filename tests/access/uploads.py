import io
from typing import Any

from PIL import Image
from werkzeug.datastructures import FileStorage

from consult.uploads import service as uploads
from tests import factories
from tests.access import EVERYONE, EXPECTED, WORLD_BUILDERS

EXPECTED.update({"uploads.file": ("GET", EVERYONE)})


def png_upload(name: str = "photo.png", color: str = "red") -> FileStorage:
    """A small real PNG, as a browser would upload it."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    buffer.seek(0)
    return FileStorage(stream=buffer, filename=name, content_type="image/png")


def build(world: dict[str, Any]) -> None:
    consultation = factories.make_consultation(world["compound"], stage="discussing")
    attachment = uploads.store(None, png_upload(), consultation=consultation)
    world["attachment_id"] = attachment.id


WORLD_BUILDERS.append(build)
