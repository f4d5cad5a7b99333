"""Model-code skew: is a model's signature what the serving code sends?

The serving schema has the signature's shape (ordered features with dtypes, an
optional target and preprocessing version). Any difference that would make the
serving code feed the model something it was not trained on is skew: features
the model needs that serving does not send, features serving sends that the model
does not know, a dtype changed, the order changed, a different target, or another
preprocessing version. ``skew`` says which, as a ``SkewReport``;
``compatibility_problems`` gives the same as one line per problem (empty:
compatible) and also accepts raw JSON documents.
Light on purpose (no pandas, no scikit-learn): the promotion gate calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from registry.models import Feature, Signature, validation_message


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retyped(_Frozen):
    """A feature both sides know, with another dtype on each."""

    name: str
    model: str  # the dtype the model was trained on
    serving: str  # the dtype serving sends


class SkewReport(_Frozen):
    """Every difference between a model's signature and a serving schema."""

    missing: tuple[str, ...] = ()  # required by the model, not sent (the model's order)
    extra: tuple[str, ...] = ()  # sent by serving, unknown to the model (serving's order)
    retyped: tuple[Retyped, ...] = ()  # in the model's order
    order: int | None = None  # first position where the shared features' order differs
    order_names: tuple[str, str] | None = None  # (model expects, serving sends) at ``order``
    target: tuple[str, str] | None = None  # ("name (dtype)" of the model's, of serving's)
    preprocessing: tuple[str | None, str] | None = None  # (model's version, serving's)

    @property
    def ok(self) -> bool:
        return not self.lines()

    def lines(self) -> list[str]:
        """One line per problem: absent and unknown features by name, then the rest."""
        problems = [
            f"feature {name!r} is required by the model but not in the serving schema"
            for name in self.missing
        ] + [f"feature {name!r} is sent by serving but unknown to the model" for name in self.extra]
        problems.sort()
        problems += [
            f"feature {r.name!r} is {r.model} in the model but {r.serving} in serving"
            for r in self.retyped
        ]
        if self.order is not None and self.order_names is not None:
            expected, sent = self.order_names
            problems.append(
                f"feature order differs at position {self.order}: the model expects "
                f"{expected!r}, serving sends {sent!r}"
            )
        if self.target is not None:
            problems.append(
                f"target is {self.target[0]} in the model but {self.target[1]} in serving"
            )
        if self.preprocessing is not None:
            problems.append(
                f"preprocessing version is {self.preprocessing[0] or 'unset'} in the model "
                f"but {self.preprocessing[1]} in serving"
            )
        return problems

    def summary(self) -> str:
        """One line naming the features: ``missing a (the model needs it, serving does
        not send it); extra b (sent, the model was never trained on it); retyped c (x -> y)``."""
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)} (needed by the model, not sent)")
        if self.extra:
            parts.append(f"extra {', '.join(self.extra)} (sent, unknown to the model)")
        if self.retyped:
            changes = (f"{r.name} ({r.model} -> {r.serving})" for r in self.retyped)
            parts.append(f"retyped {', '.join(changes)}")
        if self.order is not None and self.order_names is not None:
            expected, sent = self.order_names
            parts.append(f"order at {self.order} ({expected} expected, {sent} sent)")
        if self.target is not None:
            parts.append(f"target {self.target[0]} -> {self.target[1]}")
        if self.preprocessing is not None:
            parts.append(
                f"preprocessing {self.preprocessing[0] or 'unset'} -> {self.preprocessing[1]}"
            )
        return "; ".join(parts) or "compatible"


def skew(model: Signature, serving: Signature) -> SkewReport:
    """What differs between the model's signature and the schema serving sends.

    A serving schema without a target or preprocessing version does not constrain them.
    """
    model_types = {f.name: f.dtype for f in model.features}
    serving_types = {f.name: f.dtype for f in serving.features}
    model_order = [f.name for f in model.features if f.name in serving_types]
    serving_order = [f.name for f in serving.features if f.name in model_types]
    order = next(
        (i for i, (a, b) in enumerate(zip(model_order, serving_order, strict=True)) if a != b),
        None,
    )  # the same names on both sides, so equal lengths
    target = None
    if serving.target is not None and model.target is not None and serving.target != model.target:
        target = (_describe(model.target), _describe(serving.target))
    wanted = serving.preprocessing_version
    preprocessing = None
    if wanted is not None and model.preprocessing_version != wanted:
        preprocessing = (model.preprocessing_version, wanted)
    return SkewReport(
        missing=tuple(n for n in model_types if n not in serving_types),
        extra=tuple(n for n in serving_types if n not in model_types),
        retyped=tuple(
            Retyped(name=n, model=t, serving=serving_types[n])
            for n, t in model_types.items()
            if n in serving_types and serving_types[n] != t
        ),
        order=order,
        order_names=None if order is None else (model_order[order], serving_order[order]),
        target=target,
        preprocessing=preprocessing,
    )


def compatibility_problems(
    model_signature: Signature | Mapping[str, Any], serving_schema: Signature | Mapping[str, Any]
) -> list[str]:
    """One line per incompatibility between the model and the serving schema.

    Either side may be a ``Signature`` or its JSON document; a malformed document is
    itself a problem line, not an exception.
    """
    model = _parse(model_signature, "model signature")
    serving = _parse(serving_schema, "serving schema")
    if isinstance(model, str) or isinstance(serving, str):
        return [p for p in (model, serving) if isinstance(p, str)]
    return skew(model, serving).lines()


def _describe(feature: Feature) -> str:
    return f"{feature.name} ({feature.dtype})"


def _parse(value: Any, what: str) -> Signature | str:
    if isinstance(value, Signature):
        return value
    if not isinstance(value, Mapping):
        return f"{what} is not a JSON object"
    try:
        return Signature.model_validate(dict(value))
    except ValidationError as exc:
        return f"{what} is malformed: {validation_message(exc)}"
