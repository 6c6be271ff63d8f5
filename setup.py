"""The one compiled part: ``schemas._canonical`` (the rest of the build is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("schemas._canonical", ["schemas/_canonical.c"]),
    ]
)
