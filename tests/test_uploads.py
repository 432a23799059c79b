import io

from consult.uploads import service as uploads
from tests import factories
from tests.access.uploads import png_upload


def test_photos_are_re_encoded_without_metadata(compound):
    from PIL import Image

    c = factories.make_consultation(compound, stage="discussing")
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make; GPS would be stripped the same way
    Image.new("RGB", (3000, 2000), "blue").save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    from werkzeug.datastructures import FileStorage

    stored = uploads.store(None, FileStorage(buffer, "IMG_0001.JPG"), consultation=c,
                           images_only=True)
    data = uploads.read(stored)
    with Image.open(io.BytesIO(data)) as image:
        assert max(image.size) == 2400 and not image.getexif()
    assert stored.mimetype == "image/jpeg" and b"PhoneMaker" not in data


def test_files_of_a_draft_stay_hidden_until_it_is_published(client, login_as, compound):
    draft = factories.make_consultation(compound)
    attachment = uploads.store(None, png_upload(), consultation=draft)
    assert client.get(f"/files/{attachment.id}").status_code == 404
    draft.stage = "soliciting"
    assert client.get(f"/files/{attachment.id}").status_code == 200


def test_file_responses_cannot_be_sniffed_into_html(client, compound):
    c = factories.make_consultation(compound, stage="discussing")
    attachment = uploads.store(None, png_upload(), consultation=c)
    r = client.get(f"/files/{attachment.id}")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.mimetype == "image/jpeg"
