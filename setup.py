"""Package layout and extras that pyproject.toml alone cannot say.

- The top-level `mappings/` folder (the shipped workflows, which ops edit in a clone) travels
  in the wheel as `syncd/shipped_mappings`, so `syncd demo` and `syncd check` find it after
  `pip install syncd`.
- The `sandbox` extra is the syncd-sandbox distribution (fakes, localdb, `syncd demo`) that
  lives in this tree under `sandbox/`. pip takes no relative path in a requirement, so a build
  from a clone names it by absolute file URL (`pip install '.[sandbox]'` then installs both;
  a wheel built this way works on the machine that built it). A build without that folder
  (from an sdist) names the distribution, to be found in the index.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
SANDBOX = HERE / "sandbox"


def sandbox_requirement() -> str:
    if (SANDBOX / "pyproject.toml").is_file():
        return f"syncd-sandbox @ {SANDBOX.as_uri()}"
    return "syncd-sandbox"


setup(
    # Namespace discovery also lists data-only folders; the sandbox is its own distribution.
    packages=[
        *find_namespace_packages(include=["syncd*", "connectors*"], exclude=["*.__pycache__"]),
        "syncd.shipped_mappings",
        "syncd.shipped_mappings.templates",  # a folder of data: named, or setuptools warns
    ],
    package_dir={"syncd.shipped_mappings": "mappings"},
    extras_require={
        "postgres": ["psycopg[binary]>=3.1"],
        "sandbox": [sandbox_requirement()],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "responses>=0.25",
            "hypothesis>=6.100",
            "httpx>=0.27",
            "ruff>=0.5",
            "psycopg[binary]>=3.1",
            "jsonschema>=4.21",  # tests/unit/test_schema.py checks the mapping JSON schema
            "import-linter>=2.0",  # the layers' import rules (tests/unit/test_import_rules.py)
            "mypy>=1.10",
            # the console's browser test drives the system Chromium (never a downloaded browser)
            "playwright>=1.40",
        ],
    },
)
