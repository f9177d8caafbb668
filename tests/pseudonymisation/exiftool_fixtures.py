"""Photos carrying every kind of identifying metadata, written with the real exiftool, and a
reader that lists what exiftool finds in a file."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

from PIL import Image

PHOTO = Path(__file__).parents[2] / "gateway" / "demo_photos" / "masks_maksssksksss30.jpg"
SECRETS = ("Jane", "Doe", "SN-998877", "Berlin", "52 deg", "MAKERNOTE")
FORMATS = ("jpeg", "png", "webp", "tiff")

# Tags that describe how to decode pixels (and exiftool's own file facts): nothing else may
# survive in a released file.
STRUCTURAL = {
    "File": {
        "FileType", "FileTypeExtension", "MIMEType", "ImageWidth", "ImageHeight",
        "EncodingProcess", "BitsPerSample", "ColorComponents", "YCbCrSubSampling",
        "ExifByteOrder",
    },
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "PNG": {
        "ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter",
        "Interlace",
    },
    "RIFF": {"VP8Version", "ImageWidth", "ImageHeight", "HorizontalScale", "VerticalScale"},
    "IFD0": {
        "ImageWidth", "ImageHeight", "BitsPerSample", "Compression",
        "PhotometricInterpretation", "StripOffsets", "SamplesPerPixel", "RowsPerStrip",
        "StripByteCounts", "PlanarConfiguration", "Predictor", "SampleFormat",
    },
    "Composite": {"ImageSize", "Megapixels"},
}  # fmt: skip
IGNORED_GROUPS = {"SourceFile", "System", "ExifTool"}


def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        raise RuntimeError("exiftool is missing: apt-get install libimage-exiftool-perl")
    return found


def read_tags(path: Path) -> dict[str, str]:
    """Every tag exiftool finds (unknown ones too), as 'Group:Tag' -> value."""
    out = subprocess.run(
        [exiftool(), "-j", "-G1", "-a", "-u", "-b", "-api", "LargeFileSupport=1", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tags = json.loads(out)[0]
    return {k: str(v) for k, v in tags.items() if k.split(":")[0] not in IGNORED_GROUPS}


def not_structural(tags: dict[str, str], *, allow_groups: frozenset[str] = frozenset()) -> dict:
    return {
        k: v
        for k, v in tags.items()
        if k.split(":", 1)[-1] not in STRUCTURAL.get(k.split(":")[0], set())
        and k.split(":")[0] not in allow_groups
    }


def _run(*args: str) -> None:
    subprocess.run([exiftool(), "-q", "-q", "-overwrite_original", *args], check=True)


def write_tagged_photos(directory: Path) -> dict[str, Path]:
    """The CC0 photo as JPEG, PNG, WebP and TIFF, each carrying GPS, XMP, IPTC (where the
    format holds it), MakerNotes, comments, an EXIF thumbnail and orientation 6."""
    image = Image.open(PHOTO)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "ExampleCam", "EX-1"
    exif.get_ifd(0x8769)[0x927C] = b"JANEDOE-MAKERNOTE SN-998877"  # MakerNote
    thumb = directory / "thumb.jpg"
    image.resize((80, 48)).save(thumb)
    jpeg = directory / "tagged.jpeg"
    image.save(jpeg, exif=exif.tobytes(), quality=92, icc_profile=_srgb_icc())
    _run(
        "-GPSLatitude=52.52", "-GPSLatitudeRef=N", "-GPSLongitude=13.40", "-GPSLongitudeRef=E",
        "-XMP-dc:Creator=Jane Doe", "-IPTC:By-line=Jane Doe", "-IPTC:City=Berlin",
        "-Comment=owner Jane Doe", "-EXIF:Artist=Jane Doe", "-EXIF:SerialNumber=SN-998877",
        "-Orientation#=6", "-DateTimeOriginal=2024:06:14 09:41:07", f"-ThumbnailImage<={thumb}",
        str(jpeg),
    )  # fmt: skip
    paths = {"jpeg": jpeg}
    for fmt in FORMATS[1:]:
        target = directory / f"tagged.{fmt}"
        buf = io.BytesIO()
        image.save(buf, fmt.upper(), icc_profile=_srgb_icc())
        target.write_bytes(buf.getvalue())
        _run(
            "-tagsFromFile", str(jpeg), "-all:all", f"-ThumbnailImage<={thumb}",
            "-Comment=owner Jane Doe", "-XMP-dc:Creator=Jane Doe", str(target),
        )  # fmt: skip
        paths[fmt] = target
    return paths


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
