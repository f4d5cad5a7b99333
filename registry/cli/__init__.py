"""The ``modelreg`` command line: a thin layer over the ``registry`` package.

``main.py`` owns the command group and the one place that turns errors into a
line on stderr and an exit code; the other modules hold the commands. They
import only click at module level and load the registry, pydantic, SQLAlchemy
and Rich inside the command that needs them, so ``modelreg --help`` stays fast.
"""
