"""Package layout that pyproject.toml alone cannot say: the top-level `mappings/` folder (the
shipped workflows, which ops edit in a clone) travels in the wheel as `syncd/shipped_mappings`,
so `syncd demo` and `syncd check` find it after `pip install syncd`."""

from setuptools import find_namespace_packages, setup

setup(
    # Namespace discovery also lists the data-only folders (connectors/github/specs, ...).
    packages=[
        *find_namespace_packages(include=["syncd*", "connectors*"], exclude=["*.__pycache__"]),
        "syncd.shipped_mappings",
    ],
    package_dir={"syncd.shipped_mappings": "mappings"},
)
