"""The redaction policy: which detectors run, how sure they must be, how regions are masked.

A typed, frozen object. The policies issue embeds it in YAML policy documents; unknown keys
are refused so that a typo never silently weakens protection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Operator(StrEnum):
    BLUR = "blur"
    PIXELATE = "pixelate"
    FILL = "fill"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FacePolicy(_Strict):
    enabled: bool = True
    threshold: float = Field(
        0.08,
        gt=0,
        lt=1,
        description="CenterFace score above which a face is kept (0.08: see bench/face_recall.py)",
    )
    margin: float = Field(
        0.25, ge=0, le=2, description="box growth on each side, share of box size"
    )
    margin_px: int = Field(
        2, ge=0, le=64, description="extra growth on each side in pixels (small faces' boxes)"
    )
    top_share: float = Field(
        0.4,
        ge=0,
        le=1,
        description="share of the margin applied above the box: CenterFace's boxes already "
        "reach above the brow (bench/README.md, face mask shape)",
    )
    ellipse: bool = Field(True, description="mask faces with an ellipse inscribed in the grown box")


class PlatePolicy(_Strict):
    enabled: bool = True
    threshold: float = Field(0.3, ge=0, lt=1, description="text-detector box score to keep")
    margin: float = Field(0.5, ge=0, le=2, description="growth on each side, share of box height")
    far_scale: float = Field(
        2.0,
        ge=1,
        le=3,
        description="upscale of the second text-detector pass for far plates (most of the plate "
        "cost; 1.5 keeps plates of 20 px and more at 0.65x the time, but loses small ones: "
        "bench/README.md)",
    )
    far_precision: Literal["f32", "bf16"] = Field(
        "bf16",
        description="precision of the far pass on OpenVINO: bf16 halves its CPU and kept every "
        "plate of both plate sets (bench/README.md, plate passes); it runs in bf16 only where "
        "the CPU has avx512_bf16 or AMX, in f32 elsewhere (logged; `PlateDetector.precisions`)",
    )
    near_precision: Literal["f32", "bf16"] = Field(
        "bf16",
        description="precision of the native-size pass on OpenVINO, as `far_precision`: bf16 "
        "kept every plate of both plate sets in two sessions' runs and saves ~55 ms a 720p frame "
        "(bench/README.md, plate recogniser and native pass in bf16)",
    )
    far_threshold: float | None = Field(
        None, ge=0, lt=1, description="box score the far pass keeps; None: `threshold`"
    )
    near_with_far: float = Field(
        0.75,
        gt=0,
        le=1,
        description="scale of the native pass, share of its usual one, on images where the far "
        "pass runs at its full `far_scale` (it sees every plate the native pass sees, bigger): "
        "0.75 kept every plate, 0.5 lost plate frames the far pass's tighter boxes cover < 90%",
    )
    far_rows: Literal["busy", "all"] = Field(
        "busy",
        description="rows the far pass looks at: `busy`, from the first to the last row of "
        "16 px cells with strong vertical edges (text), 32 px of context around them, so flat "
        "sky, bonnet and night road above and below are left out (bench/README.md, far pass on "
        "busy rows); `all`, every row",
    )
    read_precision: Literal["f32", "bf16"] = Field(
        "bf16",
        description="precision of the plate recogniser on OpenVINO: bf16 cut its CPU 2.7x with "
        "`read_min_width` and changed no plate decision on both plate sets (bench/README.md, "
        "plate recogniser); f32 where the CPU has no avx512_bf16 or AMX (logged)",
    )
    read_min_width: int = Field(
        160,
        ge=48,
        le=320,
        description="narrowest recogniser batch in pixels at 48 px high: a batch is as wide as "
        "its widest crop (steps of 32), at least this; PaddleOCR pads every batch to 320",
    )


class TextPolicy(_Strict):
    """Personal text found by OCR + Presidio. Off by default: OCR is the slowest step."""

    enabled: bool = False
    entities: tuple[str, ...] = (
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "URL",
    )
    score_threshold: float = Field(0.3, ge=0, le=1)
    margin: float = Field(0.15, ge=0, le=2)


class LeakCheckPolicy(_Strict):
    enabled: bool = True
    face_threshold: float = Field(
        0.5, gt=0, lt=1, description="second detector's threshold on output"
    )
    max_rounds: int = Field(2, ge=1, le=5)
    scale: float = Field(
        0.5,
        ge=0.25,
        le=1,
        description="resize factor of the output before the leak detector looks at it. At 0.5 "
        "(sees faces from about 32 px) face recall on the sample sets is the same as at 1, the "
        "check costs a third, and street frames get a third of the false hits (RetinaFace at "
        "full resolution calls whole cars and road signs faces): bench/README.md, leak check",
    )


class Limits(_Strict):
    max_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_pixels: int = Field(50_000_000, gt=0)


class RedactionPolicy(_Strict):
    faces: FacePolicy = FacePolicy()
    plates: PlatePolicy = PlatePolicy()
    text: TextPolicy = TextPolicy()
    operator: Operator = Operator.BLUR
    leak_check: LeakCheckPolicy = LeakCheckPolicy()
    limits: Limits = Limits()
    timeout_seconds: float = Field(60.0, gt=0, le=3600)
