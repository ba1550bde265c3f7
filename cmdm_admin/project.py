"""Where the project lives: its checkout (alembic.ini, migrations/, sql/, rules/) and the
folder that holds the embedded PostgreSQL cluster."""

from __future__ import annotations

import os
from pathlib import Path

from cmdm_admin.errors import CmdmError

#: Environment variable naming the folder of the embedded cluster (default: <project>/.cmdm).
CLUSTER_DIR_ENV = "CMDM_HOME"


def project_dir() -> Path:
    """The checkout cmdm runs from: the folder holding alembic.ini next to cmdm_admin/.

    cmdm is installed editable (`pip install -e .`), so the package's parent is the checkout;
    migrations and templates are read from there, never from site-packages.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / "alembic.ini").is_file():
        raise CmdmError(
            f"cannot find alembic.ini next to the cmdm_admin package (looked in {root})",
            hint="install cmdm from its checkout with `pip install -e .`",
        )
    return root


def cmdm_home() -> Path:
    """Folder of the embedded cluster's files: $CMDM_HOME, else <project>/.cmdm."""
    configured = os.environ.get(CLUSTER_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return project_dir() / ".cmdm"
