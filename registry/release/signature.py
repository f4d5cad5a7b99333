"""Model-code skew: is a model's signature what the serving code sends?

The serving schema has the signature's shape (ordered features with dtypes, an
optional target and preprocessing version). Any difference that would make the
serving code feed the model something it was not trained on is a problem:
features added or removed, a dtype changed, the order changed, a different
target, or another preprocessing version. An empty list means compatible.
Light on purpose (no pandas, no scikit-learn): the promotion gate calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from registry.models import Signature, validation_message


def compatibility_problems(
    model_signature: Mapping[str, Any], serving_schema: Mapping[str, Any]
) -> list[str]:
    """One line per incompatibility between the model and the serving schema."""
    model = _parse(model_signature, "model signature")
    serving = _parse(serving_schema, "serving schema")
    if isinstance(model, str) or isinstance(serving, str):
        return [p for p in (model, serving) if isinstance(p, str)]
    problems: list[str] = []
    model_types = {f.name: f.dtype for f in model.features}
    serving_types = {f.name: f.dtype for f in serving.features}
    for name in model_types.keys() - serving_types.keys():
        problems.append(f"feature {name!r} is required by the model but not in the serving schema")
    for name in serving_types.keys() - model_types.keys():
        problems.append(f"feature {name!r} is sent by serving but unknown to the model")
    problems.sort()
    for name, dtype in model_types.items():
        sent = serving_types.get(name)
        if sent is not None and sent != dtype:
            problems.append(f"feature {name!r} is {dtype} in the model but {sent} in serving")
    model_order = [f.name for f in model.features if f.name in serving_types]
    serving_order = [f.name for f in serving.features if f.name in model_types]
    if model_order != serving_order:
        pairs = zip(model_order, serving_order, strict=True)  # the same names, so equal lengths
        first = next(i for i, (a, b) in enumerate(pairs) if a != b)
        problems.append(
            f"feature order differs at position {first}: the model expects "
            f"{model_order[first]!r}, serving sends {serving_order[first]!r}"
        )
    if serving.target is not None and model.target is not None and serving.target != model.target:
        problems.append(
            f"target is {model.target.name} ({model.target.dtype}) in the model but "
            f"{serving.target.name} ({serving.target.dtype}) in serving"
        )
    wanted = serving.preprocessing_version
    if wanted is not None and model.preprocessing_version != wanted:
        problems.append(
            f"preprocessing version is {model.preprocessing_version or 'unset'} in the model "
            f"but {wanted} in serving"
        )
    return problems


def _parse(value: Any, what: str) -> Signature | str:
    if isinstance(value, Signature):
        return value
    if not isinstance(value, Mapping):
        return f"{what} is not a JSON object"
    try:
        return Signature.model_validate(dict(value))
    except ValidationError as exc:
        return f"{what} is malformed: {validation_message(exc)}"
