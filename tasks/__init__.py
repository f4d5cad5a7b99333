"""Prefect tasks: thin wrappers over functions of the ``registry`` package.

Each takes plain values (a ``RunSettings``, names, versions, paths) and opens the
registry itself; none receives a model object or a store client.
"""
