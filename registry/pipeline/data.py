"""Transactions data: a seeded fraud generator, dated files, loading with lineage, the split.

The generator draws card transactions whose label has real, stable signal: a
fixed logistic model of risk factors (amount, night hours, card-not-present,
young accounts, velocity, distance, risky merchant categories and countries),
with the intercept solved so that the fraud rate is what was asked for (2 % by
default). The same coefficients hold for every date, so models trained on
successive months are comparable; ``drift`` shifts both the inputs and the risk
pattern for demos of a data change.

A dataset version is what ``load_dataset`` returns as lineage: the name, a
sha256 fingerprint of the file's bytes, the row count and the date range.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from registry.errors import InvalidInput

FEATURES: list[tuple[str, str]] = [
    ("amount", "float64"),
    ("hour", "int64"),
    ("day_of_week", "int64"),
    ("merchant_category", "category"),
    ("country", "category"),
    ("device", "category"),
    ("card_present", "int64"),
    ("account_age_days", "int64"),
    ("txn_count_24h", "int64"),
    ("distance_km", "float64"),
]
TARGET: tuple[str, str] = ("is_fraud", "int64")
PREPROCESSING_VERSION = "fe-1"
TIMESTAMP = "timestamp"
ID = "transaction_id"
# The data subject of each row: the card holder. Never a feature (training reads only
# ``FEATURES``); the pipeline records the dataset version's subjects from it, keyed
# (``registry.subjects``), so ``modelreg lineage subject`` can find them.
SUBJECT = "customer_id"
CUSTOMERS = 50_000  # the bank's card holders; each month's rows draw from all of them

# Domain limits of each feature: what a valid transaction can hold. Validation
# derives its range and set expectations from these.
RANGES: dict[str, tuple[float, float]] = {
    "amount": (0.0, 100_000.0),
    "hour": (0, 23),
    "day_of_week": (0, 6),
    "account_age_days": (0, 36_500),
    "txn_count_24h": (0, 1_000),
    "distance_km": (0.0, 20_040.0),  # half the Earth's circumference
}
ALLOWED: dict[str, tuple[int, ...]] = {"card_present": (0, 1), TARGET[0]: (0, 1)}

# (name, share of transactions, median amount, fraud risk in logits)
_MERCHANTS = [
    ("grocery", 0.22, 45.0, -0.6),
    ("restaurants", 0.17, 35.0, -0.5),
    ("fuel", 0.11, 50.0, -0.2),
    ("online_retail", 0.15, 60.0, 0.5),
    ("entertainment", 0.08, 40.0, 0.0),
    ("pharmacy", 0.06, 25.0, -0.6),
    ("electronics", 0.07, 250.0, 0.9),
    ("travel", 0.06, 300.0, 0.6),
    ("gaming", 0.05, 30.0, 0.8),
    ("jewelry", 0.03, 400.0, 1.1),
]
# (country, share, fraud risk in logits, typical distance from home in km)
_COUNTRIES = [
    ("US", 0.42, 0.0, 8.0),
    ("GB", 0.12, -0.1, 6.0),
    ("DE", 0.10, -0.2, 6.0),
    ("FR", 0.08, -0.1, 6.0),
    ("CA", 0.07, 0.0, 10.0),
    ("IN", 0.06, 0.3, 12.0),
    ("BR", 0.06, 0.5, 12.0),
    ("MX", 0.05, 0.4, 12.0),
    ("AU", 0.02, 0.0, 10.0),
    ("NG", 0.02, 0.8, 15.0),
]
# (device, share, card present probability, fraud risk in logits)
_DEVICES = [
    ("pos", 0.46, 0.97, -0.3),
    ("mobile", 0.34, 0.02, 0.2),
    ("desktop", 0.15, 0.01, 0.3),
    ("tablet", 0.05, 0.01, 0.2),
]
# Relative volume per hour of day: quiet nights, busy afternoons and evenings.
_SIGNAL = 1.5  # scales every risk factor: how separable fraud is
_HOURLY = np.array(
    [
        *(2, 1.2, 0.8, 0.6, 0.6, 0.8, 1.5, 3, 4.5, 5, 5.5, 6),  # 00:00-11:59
        *(6.5, 6, 5.5, 5.5, 6, 6.5, 7, 6.5, 5.5, 4.5, 3.5, 2.5),  # 12:00-23:59
    ]
)


def expected_signature() -> dict[str, Any]:
    """The signature every model trained here has (DESIGN.md's shape)."""
    return {
        "features": [{"name": n, "dtype": t} for n, t in FEATURES],
        "target": {"name": TARGET[0], "dtype": TARGET[1]},
        "preprocessing_version": PREPROCESSING_VERSION,
    }


def feature_names() -> list[str]:
    return [name for name, _ in FEATURES]


def categorical_features() -> list[str]:
    return [name for name, dtype in FEATURES if dtype == "category"]


def generate_transactions(
    start: date,
    end: date,
    *,
    rows: int,
    seed: int,
    fraud_rate: float = 0.02,
    drift: float = 0.0,
) -> pd.DataFrame:
    """``rows`` card transactions between ``start`` and ``end`` (inclusive), sorted by time.

    Deterministic for the same arguments: the random stream is seeded with
    ``seed`` and the date range, so each month gets its own draws. Columns:
    ``transaction_id``, ``customer_id`` (one of ``CUSTOMERS`` card holders, the same
    ones every month), ``timestamp``, the ``FEATURES`` and the ``is_fraud`` label.
    """
    if rows < 1:
        raise InvalidInput(f"rows must be at least 1, got {rows}")
    if end < start:
        raise InvalidInput(f"date range starts after it ends: {start} > {end}")
    if not 0.0 < fraud_rate < 0.5:
        raise InvalidInput(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    if not 0.0 <= drift <= 1.0:
        raise InvalidInput(f"drift must be in [0, 1], got {drift}")
    rng = np.random.default_rng([seed, start.toordinal(), end.toordinal()])
    timestamps = _timestamps(rng, start, end, rows)

    merchant_idx = rng.choice(len(_MERCHANTS), rows, p=_shares(_MERCHANTS, drift))
    country_idx = rng.choice(len(_COUNTRIES), rows, p=_shares(_COUNTRIES, 0.0))
    device_shares = np.array([d[1] for d in _DEVICES])
    device_shares = device_shares + drift * np.array([-0.2, 0.15, 0.03, 0.02])
    device_idx = rng.choice(len(_DEVICES), rows, p=device_shares / device_shares.sum())

    medians = np.array([m[2] for m in _MERCHANTS])[merchant_idx] * np.exp(0.5 * drift)
    amount = np.round(np.clip(medians * rng.lognormal(0.0, 0.8, rows), 0.5, 25_000.0), 2)
    card_present = (rng.random(rows) < np.array([d[2] for d in _DEVICES])[device_idx]).astype(
        np.int64
    )
    account_age = np.clip(rng.lognormal(np.log(700.0), 1.1, rows), 0, 20_000).astype(np.int64)
    velocity = (rng.poisson(1.3, rows) + 1).astype(np.int64)
    home_km = np.array([c[3] for c in _COUNTRIES])[country_idx]
    travelling = rng.random(rows) < 0.04
    distance = np.where(
        travelling, rng.lognormal(np.log(800.0), 1.0, rows), home_km * rng.lognormal(0, 1.0, rows)
    )
    distance = np.round(np.clip(distance, 0.0, 20_000.0), 1)

    hour = timestamps.hour.to_numpy().astype(np.int64)
    logit = (
        0.8 * np.log(amount / medians)
        + 0.3 * np.log(amount / 50.0)
        + 1.5 * (hour <= 5)
        + 1.1 * (1 - card_present)
        + 1.6 * (account_age < 30)
        + 0.5 * (np.minimum(velocity, 8) - 2.3)
        + (0.6 - 0.4 * drift) * np.log1p(distance / 50.0)
        + np.array([m[3] for m in _MERCHANTS])[merchant_idx]
        + np.array([c[2] for c in _COUNTRIES])[country_idx]
        + np.array([d[3] for d in _DEVICES])[device_idx]
    )
    # Concept drift: a new scheme on mobile gaming that the old pattern does not know.
    logit = logit + 1.5 * drift * ((merchant_idx == 8) & (device_idx == 1))
    logit = _SIGNAL * logit
    probability = _sigmoid(logit + _intercept_for(logit, fraud_rate))
    is_fraud = (rng.random(rows) < probability).astype(np.int64)

    # Customers from a stream of their own: the other columns are the draws they were.
    customers = np.random.default_rng([seed, start.toordinal(), end.toordinal(), 1]).integers(
        1, CUSTOMERS + 1, rows
    )
    frame = pd.DataFrame(
        {
            ID: [f"tx-{start:%Y%m%d}-{i:07d}" for i in range(rows)],
            SUBJECT: [f"cust-{n:06d}" for n in customers],
            TIMESTAMP: timestamps,
            "amount": amount,
            "hour": hour,
            "day_of_week": timestamps.day_of_week.to_numpy().astype(np.int64),
            "merchant_category": _categorical(_MERCHANTS, merchant_idx),
            "country": _categorical(_COUNTRIES, country_idx),
            "device": _categorical(_DEVICES, device_idx),
            "card_present": card_present,
            "account_age_days": account_age,
            "txn_count_24h": velocity,
            "distance_km": distance,
            TARGET[0]: is_fraud,
        }
    )
    return frame


def _timestamps(rng: np.random.Generator, start: date, end: date, rows: int) -> pd.DatetimeIndex:
    days = (end - start).days + 1
    day_weights = np.array(
        [1.1 if (start + timedelta(d)).weekday() >= 5 else 1.0 for d in range(days)]
    )
    day = rng.choice(days, rows, p=day_weights / day_weights.sum())
    hour = rng.choice(24, rows, p=_HOURLY / _HOURLY.sum())
    seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, rows)
    seconds.sort()
    origin = np.datetime64(start.isoformat(), "s")
    return pd.DatetimeIndex(origin + seconds.astype("timedelta64[s]"))


def _shares(table: list[Any], drift: float) -> np.ndarray:
    shares = np.array([row[1] for row in table], dtype=float)
    if drift:  # more online and gaming, less groceries
        shift = np.zeros(len(shares))
        shift[[0, 3, 8]] = [-0.08, 0.05, 0.03]
        shares = np.clip(shares + drift * shift, 0.001, None)
    result: np.ndarray = shares / shares.sum()
    return result


def _categorical(table: list[Any], index: np.ndarray) -> pd.Categorical:
    names = [row[0] for row in table]
    return pd.Categorical.from_codes(index, categories=names)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _intercept_for(logit: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean fraud probability ``rate`` (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(80):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# ---------------------------------------------------------------- files


def dataset_path(root: Path, as_of: date, name: str = "transactions", fmt: str = "parquet") -> Path:
    return Path(root) / f"{name}-{as_of.isoformat()}.{fmt}"


def write_dataset(
    df: pd.DataFrame,
    root: Path,
    name: str = "transactions",
    *,
    as_of: date,
    fmt: str = "parquet",
) -> Path:
    """Write ``df`` as ``root/<name>-<as_of>.<fmt>`` atomically (temp file, then rename).

    ``root`` is the data folder itself, e.g. ``.modelreg/data``.
    """
    if fmt not in ("parquet", "csv"):
        raise InvalidInput(f"unsupported dataset format {fmt!r}; expected parquet or csv")
    path = dataset_path(root, as_of, name, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


DEFAULT_ROWS = 30_000
DEFAULT_WINDOW_DAYS = 30


def ensure_dataset(
    root: Path,
    as_of: date,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = 0,
    name: str = "transactions",
    drift: float = 0.0,
    fmt: str = "parquet",
) -> Path:
    """The dataset file for ``as_of`` (the 30 days before it), generated if missing.

    An existing file is returned as it is: a dataset version never changes once written.
    """
    path = dataset_path(root, as_of, name, fmt)
    if path.exists():
        return path
    start = as_of - timedelta(days=DEFAULT_WINDOW_DAYS)
    end = as_of - timedelta(days=1)
    frame = generate_transactions(start, end, rows=rows, seed=seed, drift=drift)
    return write_dataset(frame, root, name, as_of=as_of, fmt=fmt)


_DATED = re.compile(r"^(?P<name>.+?)-(?P<date>\d{4}-\d{2}-\d{2})$")


def load_dataset(path: Path, name: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a .parquet or .csv transactions file and describe it as a dataset version.

    The lineage record is DatasetRef-shaped: name, version (the file's date stamp,
    else the start of its fingerprint), fingerprint ``sha256:<hex>`` of the bytes,
    rows and date_range (``None`` without a usable ``timestamp`` column).
    Categorical features read from CSV become pandas categories and the
    timestamp column is parsed; nothing else is coerced (validation judges types).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InvalidInput(f"unsupported dataset file {path.name!r}: expected .csv or .parquet")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInput(f"dataset file not found: {path}") from exc
    except OSError as exc:
        raise InvalidInput(f"could not read dataset {path}: {exc}") from exc
    frame = _parse(path, suffix)
    frame = _coerce(frame)
    fingerprint = "sha256:" + hashlib.sha256(data).hexdigest()
    match = _DATED.match(path.stem)
    lineage = {
        "name": name or (match.group("name") if match else path.stem),
        "version": match.group("date") if match else fingerprint[7:19],
        "fingerprint": fingerprint,
        "rows": len(frame),
        "date_range": _date_range(frame),
    }
    return frame, lineage


def _parse(path: Path, suffix: str) -> pd.DataFrame:
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"could not read dataset {path.name}: {first}") from exc


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in categorical_features():
        if column not in frame.columns or isinstance(frame[column].dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
            frame[column] = frame[column].astype("category")
    if TIMESTAMP in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[TIMESTAMP]):
        parsed = pd.to_datetime(frame[TIMESTAMP], errors="coerce", format="ISO8601")
        if parsed.notna().all():
            frame[TIMESTAMP] = parsed
    return frame


def _date_range(frame: pd.DataFrame) -> list[str] | None:
    if TIMESTAMP not in frame.columns or len(frame) == 0:
        return None
    column = frame[TIMESTAMP]
    if not pd.api.types.is_datetime64_any_dtype(column) or column.isna().all():
        return None
    return [column.min().date().isoformat(), column.max().date().isoformat()]


def split(
    df: pd.DataFrame, holdout_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time-based split: the latest ``holdout_fraction`` of rows is the holdout.

    Rows are ordered by ``timestamp`` (stable; row order without one); ``seed``
    only breaks ties between equal timestamps, so the split is reproducible.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise InvalidInput(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if len(df) < 2:
        raise InvalidInput(f"cannot split {len(df)} rows into train and holdout")
    if TIMESTAMP in df.columns and pd.api.types.is_datetime64_any_dtype(df[TIMESTAMP]):
        tiebreak = np.random.default_rng(seed).random(len(df))
        order = np.lexsort((tiebreak, df[TIMESTAMP].to_numpy()))
        df = df.iloc[order]
    cut = min(max(1, round(len(df) * (1.0 - holdout_fraction))), len(df) - 1)
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
