"""The cold-start bench reads what it claims: zip sizes of a package, import times of real handlers."""

from __future__ import annotations

import zipfile
from pathlib import Path

from bench.coldstart import APP_ZIP_GOAL_MB, HANDLERS, markdown, measure_imports, measure_package


def test_package_sizes_are_read_from_the_zips_make_package_wrote(tmp_path: Path) -> None:
    # Given: an app zip of 2 MB of code (stored, not compressed) and a layer
    with zipfile.ZipFile(tmp_path / "deployment.zip", "w") as archive:
        archive.writestr("app.py", b"x" * 2_000_000)
    with zipfile.ZipFile(tmp_path / "layer-deployment.zip", "w") as archive:
        archive.writestr("python/lib.py", b"y" * 10)
    # When
    package = measure_package(tmp_path)
    # Then
    assert package is not None
    assert package["app_unzipped_mb"] == 2.0
    assert package["app_zip_mb"] >= 2.0
    assert package["met"] is (package["app_zip_mb"] < APP_ZIP_GOAL_MB)


def test_without_a_package_the_report_says_to_build_one(tmp_path: Path) -> None:
    assert measure_package(tmp_path) is None


def test_each_handler_import_is_timed_in_a_fresh_interpreter_and_judged_against_the_goal() -> None:
    # When
    imports = measure_imports(runs=1)
    # Then
    assert set(imports["functions"]) == set(HANDLERS)
    ingest = imports["functions"]["ingest"]
    assert 0 < ingest["import_ms"] < ingest["first_client_ms"]
    assert imports["met"] is (ingest["import_ms"] < imports["goal_ms"])
    assert "ingest" in markdown({"imports": imports, "package": None})
