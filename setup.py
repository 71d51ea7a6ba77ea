"""Package discovery for the two folders that install under another name (the rest is pyproject.toml).

``connectors/`` installs as ``vitalsync_connectors`` and ``message_kinds/`` as
``vitalsync_message_kinds`` (``[tool.setuptools.package-dir]``). setuptools' own discovery
(``[tool.setuptools.packages.find]``) names packages after their folders and cannot rename them, so
it is run here, per folder, with the installed name in front: a new connector's package (any
folder with an ``__init__.py``) is installed without editing a list.
"""

from setuptools import find_packages, setup

#: installed name -> folder; the same mapping as [tool.setuptools.package-dir] in pyproject.toml
RENAMED = {"vitalsync_connectors": "connectors", "vitalsync_message_kinds": "message_kinds"}


def packages() -> list[str]:
    found = find_packages(include=["vitalsync", "vitalsync.*"])
    for name, folder in RENAMED.items():
        found += [name] + [f"{name}.{package}" for package in find_packages(folder)]
    return found


setup(packages=packages())
