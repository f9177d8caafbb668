"""The ML backend's settings: one object, read from `GATEWAY_ML_*` at the entry point."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ALL_SOURCES = ("persons", "vehicles", "faces", "plates", "text", "onnx")
DEFAULT_SOURCES = ("persons", "vehicles")
"""Faces, plates and text rarely fire on redacted copies (they are masked): opt-in."""


class MLBackendSettings(BaseSettings):
    """Every field can be set as `GATEWAY_ML_<NAME>`. Basic Auth credentials are mandatory:
    Label Studio authenticates to ML backends with HTTP Basic Auth only."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_ML_", extra="forbid")

    basic_auth_user: str | None = Field(None, description="user Label Studio sends")
    basic_auth_password: SecretStr | None = Field(None, description="its password")
    basic_auth_password_file: Path | None = Field(
        None, description="file holding the password (wins over basic_auth_password)"
    )
    region: str | None = Field(
        None, description="region the ML backend runs in; default: the gateway's region"
    )
    gateway_url: str | None = Field(
        None,
        description="gateway base URL: fetch redacted images over HTTP with an ml-role key "
        "(unset: read them in-process from the gateway's database and store)",
        pattern=r"^https?://[^\s?#]+$",
    )
    gateway_allow_local_addresses: bool = Field(
        False,
        description="an admin's opt-in: gateway_url may reach loopback, link-local or "
        "unspecified addresses (a gateway on this machine); metadata addresses stay refused",
    )
    label_studio_allow_local_addresses: bool = Field(
        False,
        description="an admin's opt-in: label_studio_url may reach loopback, link-local or "
        "unspecified addresses (Label Studio on this machine); metadata addresses stay refused",
    )
    gateway_api_key: SecretStr | None = Field(None, description="the backend's ml-role API key")
    gateway_api_key_file: Path | None = Field(
        None, description="file holding the ml-role API key (wins over gateway_api_key)"
    )
    gateway_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="connect/read timeout per gateway request"
    )
    sources: tuple[str, ...] = Field(DEFAULT_SOURCES, description="pre-label sources to load")
    detector_tiles: bool = Field(
        True, description="persons/vehicles: also run on square tiles (crowds, far cars)"
    )
    persons_threshold: float | None = Field(
        None, gt=0, lt=1, description="persons: score threshold (unset: the benched default, 0.42)"
    )
    vehicles_threshold: float | None = Field(
        None, gt=0, lt=1, description="vehicles: score threshold (unset: the default, 0.4)"
    )
    onnx_model: Path | None = Field(None, description="YOLO-style ONNX detection model")
    onnx_classes: Path | None = Field(None, description="class names, one per line")
    onnx_threshold: float = Field(0.35, gt=0, lt=1)
    label_map_file: Path | None = Field(
        None, description="YAML/JSON: model class -> list of project label names"
    )
    state_dir: Path | None = Field(
        None, description="per-project calibration; default: <gateway data dir>/ml_backend"
    )
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads per model")
    max_request_bytes: int = Field(8 * 1024 * 1024, gt=0)
    max_tasks_per_request: int = Field(500, gt=0)
    max_image_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    label_studio_url: str | None = Field(
        None,
        description="Label Studio's URL: `fit` reads each annotation back from it (unset: "
        "fit learns nothing, since a webhook body is only a hint)",
        pattern=r"^https?://[^\s?#]+$",
    )
    label_studio_token: SecretStr | None = Field(
        None, description="a Label Studio access token to read annotations back with"
    )
    label_studio_token_file: Path | None = Field(
        None, description="file holding that token (wins over label_studio_token)"
    )
    predict_budget_seconds: float = Field(
        60.0, gt=0, description="work per /predict call; Label Studio waits 100 s by default"
    )

    @model_validator(mode="after")
    def _known_sources(self) -> MLBackendSettings:
        unknown = set(self.sources) - set(ALL_SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; known: {', '.join(ALL_SOURCES)}")
        return self

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) or None when either is missing."""
        password: str | None = None
        if self.basic_auth_password_file is not None:
            password = self.basic_auth_password_file.read_text().strip()
        elif self.basic_auth_password is not None:
            password = self.basic_auth_password.get_secret_value()
        if not self.basic_auth_user or not password:
            return None
        return self.basic_auth_user, password

    def label_studio_token_value(self) -> str | None:
        if self.label_studio_token_file is not None:
            return self.label_studio_token_file.read_text().strip() or None
        if self.label_studio_token is not None:
            return self.label_studio_token.get_secret_value() or None
        return None

    def gateway_key(self) -> str | None:
        """The ml-role API key for the gateway, or None."""
        if self.gateway_api_key_file is not None:
            return self.gateway_api_key_file.read_text().strip() or None
        if self.gateway_api_key is not None:
            return self.gateway_api_key.get_secret_value() or None
        return None
