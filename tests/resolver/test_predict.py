"""``Served.predict``: rows are checked against the signature, never cast or padded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.modelio import load_model
from registry.release.health_worker import frame_from_records

from .conftest import REF, Registry

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def test_predict_answers_as_the_model_file_does(
    fraud: Registry, rows: list[dict[str, Any]]
) -> None:
    served = fraud.resolver().get(REF)
    model = load_model(
        Path(fraud.model_file(1)), sha256=served.artifact.sha256, size=served.artifact.size
    )
    assert served.signature is not None
    features = [f.model_dump() for f in served.signature.features]
    expected = model.predict(frame_from_records(rows, features)).tolist()
    assert served.predict(rows) == expected


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param(lambda r: r.pop("amount"), "missing amount", id="missing"),
        pytest.param(lambda r: r.update(merchant_risk=0.4), "extra merchant_risk", id="extra"),
        pytest.param(lambda r: r.update(hour="13"), "mistyped hour", id="string-for-int"),
        pytest.param(lambda r: r.update(amount=None), "mistyped amount", id="null"),
        pytest.param(lambda r: r.update(card_present=True), "mistyped card_present", id="bool"),
        pytest.param(lambda r: r.update(hour=13.5), "mistyped hour", id="float-for-int"),
    ],
)
def test_predict_refuses_rows_that_do_not_fit_the_signature(
    fraud: Registry, rows: list[dict[str, Any]], change: Any, named: str
) -> None:
    served = fraud.resolver().get(REF)
    bad = [dict(row) for row in rows]
    change(bad[2])
    with pytest.raises(InvalidInput, match=f"row 2: .*{named}"):
        served.predict(bad)
