"""Uploads fitted to a model on request: a 300×200 JPEG for Redraw is cropped or padded (and
scaled down past the model's maximum) to a size the model takes, and the answer says what was
done. Without `fit` an upload is stored as it came, as before."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.errors import ApiError
from partyhub.models import Upload

pytestmark = pytest.mark.django_db


def jpeg(width=300, height=200):
    # Left half red, right half blue, so where a crop or a pad went can be seen.
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (220, 20, 20)
    pixels[:, width // 2 :] = (20, 20, 220)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def upload(person, party, data, **fields):
    file = SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")
    return person.client.post(f"/api/parties/{party.code}/uploads", {"image": file, **fields})


def stored(answer):
    row = Upload.objects.get(pk=answer["upload"])
    with default_storage.open(row.file.name) as file:
        image = Image.open(file)
        image.load()
    return row, image


@pytest.mark.parametrize(
    "model, fit, size, scaled, message",
    [
        ("sd-turbo", "pad", (304, 256), None, "Fitted 300×200 → 304×256 by padding."),
        (
            "sd-turbo",
            "crop",
            (384, 256),
            [384, 256],
            "Fitted 300×200 → 384×256 by scaling up to 384×256.",
        ),
        (
            "offline",
            "pad",
            (256, 176),
            [256, 171],
            "Fitted 300×200 → 256×176 by scaling down to 256×171, then padding.",
        ),
        (
            "offline",
            "crop",
            (256, 168),
            [256, 171],
            "Fitted 300×200 → 256×168 by scaling down to 256×171, then cropping.",
        ),
    ],
)
def test_a_300_by_200_jpeg_is_fitted_to_the_model_and_the_answer_says_how(
    party, guest, model, fit, size, scaled, message
):
    response = upload(guest, party, jpeg(), fit=fit, model=model)
    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["width"], answer["height"]) == size
    assert answer["fit"] == {
        "how": fit,
        "model": model,
        "from": [300, 200],
        "scaled": scaled,
        "to": list(size),
        "changed": True,
        "message": message,
    }
    row, image = stored(answer)
    assert (row.width, row.height) == image.size == size
    assert image.format == "PNG" and row.source_format == "JPEG"


def test_padding_repeats_the_edges_and_cropping_keeps_the_middle(party, guest):
    _, padded = stored(upload(guest, party, jpeg(), fit="pad", model="sd-turbo").json())
    pixels = np.asarray(padded.convert("RGB")).astype(int)
    # 300 → 304 wide: 2 columns each side; 200 → 256 high: 28 rows above and below.
    assert np.abs(pixels[0, 0] - (220, 20, 20)).max() < 30  # red continues up and left
    assert np.abs(pixels[-1, -1] - (20, 20, 220)).max() < 30  # blue down and right
    _, cropped = stored(upload(guest, party, jpeg(64, 64), fit="crop", model="offline").json())
    assert cropped.size == (64, 64)


def test_without_a_model_it_fits_to_the_party_s_default_model(party, guest):
    answer = upload(guest, party, jpeg(), fit="pad").json()
    assert answer["fit"]["model"] == "offline"  # the server's default on a CPU machine
    party.defaults = {"model": "sd-turbo"}
    party.save()
    assert upload(guest, party, jpeg(), fit="pad").json()["fit"]["model"] == "sd-turbo"


def test_an_image_that_fits_is_stored_as_it_is_and_the_answer_says_so(party, guest):
    answer = upload(guest, party, jpeg(128, 96), fit="crop", model="offline").json()
    assert (answer["width"], answer["height"]) == (128, 96)
    assert answer["fit"]["changed"] is False and answer["fit"]["scaled"] is None
    assert answer["fit"]["message"] == "128×96 fits the model as it is."


def test_without_fit_nothing_changes_and_the_answer_has_no_fit(party, guest):
    answer = upload(guest, party, jpeg()).json()
    assert (answer["width"], answer["height"]) == (300, 200)
    assert "fit" not in answer


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"fit": "stretch"}, "invalid_fit"),
        ({"fit": ""}, "invalid_fit"),
        ({"model": "offline"}, "invalid_fit"),  # a model to fit to, but no fit
        ({"fit": "pad", "model": "no-such-model"}, "unknown_model"),
    ],
)
def test_a_bad_fit_is_refused_before_anything_is_stored(party, guest, fields, code):
    response = upload(guest, party, jpeg(), **fields)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert not Upload.objects.exists()


def test_a_fitted_upload_redraws_and_an_unfitted_one_is_refused_with_the_way_out(
    party, guest, member
):
    fitted = upload(guest, party, jpeg(), fit="pad", model="offline").json()
    _, render = party.submit_prompt(
        member, "a red circle", params={"mode": "img2img", "init_upload": fitted["upload"]}
    )
    assert (render.params["width"], render.params["height"]) == (256, 176)
    raw = upload(guest, party, jpeg()).json()
    with pytest.raises(ApiError) as refused:
        party.submit_prompt(
            member, "a red circle", params={"mode": "img2img", "init_upload": raw["upload"]}
        )
    assert refused.value.code == "invalid_param"
    assert "The source image is 300×200" in refused.value.message
    assert "fit (crop or pad)" in refused.value.message
    # A size given on purpose is still refused as it was.
    with pytest.raises(ApiError) as refused:
        party.submit_prompt(
            member,
            "x",
            params={"mode": "img2img", "init_upload": raw["upload"], "width": 300},
        )
    assert refused.value.message == "width must be a whole multiple of 8, not 300."
