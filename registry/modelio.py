"""The safe model format: scikit-learn models as skops files, loaded only if trusted.

A model file is checked against its registered size and sha256 before anything
in it is parsed, and loaded only when every type skops does not trust by
default is on an explicit allow-list. Pickle is never used. sklearn and skops
are imported inside the functions (they cost seconds; ``import registry`` must not).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry.errors import ArtifactError, ChecksumMismatch

# What skops (0.16) reports as untrusted for a Pipeline of ColumnTransformer,
# SimpleImputer, StandardScaler, OneHotEncoder and LogisticRegression,
# HistGradientBoostingClassifier, RandomForestClassifier or DecisionTreeClassifier
# (found by dumping each and calling get_untrusted_types). scikit-learn estimators
# themselves are trusted by skops. Deliberately absent: functools.partial and
# sklearn.utils.validation.check_array, which HistGradientBoosting adds only with
# categorical_features="from_dtype" — encode categories with OneHotEncoder instead,
# or pass them in ``trusted`` knowingly.
DEFAULT_TRUSTED: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


def save_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` as a compressed skops file, atomically (temp file, then rename)."""
    import skops.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        skops.io.dump(model, tmp, compression=zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_model(
    path: str | Path,
    *,
    sha256: str,
    size: int,
    trusted: Sequence[str] = DEFAULT_TRUSTED,
) -> Any:
    """Load a skops file whose size and sha256 match, if all its types are trusted.

    Raises ``ChecksumMismatch`` (nothing parsed) or ``ArtifactError`` naming the
    untrusted types (nothing loaded). The bytes are read once and the same bytes
    are checked, inspected and loaded, so the file cannot change in between.
    """
    data = _read_verified(Path(path), sha256, size)
    import skops.io

    types = _untrusted_types(data, path)
    refused = sorted(set(types) - set(trusted))
    if refused:
        raise ArtifactError(f"refusing to load {path}: untrusted types {', '.join(refused)}")
    try:
        return skops.io.loads(data, trusted=list(types))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"could not load model {path}: {exc}") from exc


def _read_verified(path: Path, sha256: str, size: int) -> bytes:
    try:
        actual_size = path.stat().st_size
        if actual_size != size:  # cheap refusal before reading anything
            raise ChecksumMismatch(f"model {path} has {actual_size} bytes, expected {size}")
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"could not read model {path}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != size or actual != sha256:
        raise ChecksumMismatch(
            f"model {path} is corrupt: sha256 {actual[:12]} ({len(data)} bytes), "
            f"expected {sha256[:12]} ({size} bytes)"
        )
    return data


def _untrusted_types(data: bytes, path: str | Path) -> list[str]:
    import skops.io

    try:
        return list(skops.io.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a valid skops file: {exc}") from exc
