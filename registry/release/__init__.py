"""Release decisions: the one home of every rule that decides what may serve.

- ``policy``: the release policy a model keeps in the registry (required gates,
  staging metric rules, regions, protected aliases, canary parameters, approvals).
- ``checks``: the kinds of recorded checks and the typed evidence of each.
- ``gates``: pure decisions, ``(policy, facts) -> Decision``, for staging,
  promotion, protected aliases and rollback.
- ``transitions``: the stage machine and the rollback target.
- ``signature``: model-code skew between a model's signature and a serving schema.
- ``canary``: the paired statistical test on shadow traffic.
- ``health``: loading a replica in a fresh process and checking its predictions.
- ``lock``: one promotion or rollback per model at a time.

The SQL store calls ``gates`` inside the transaction that flips a pointer, so every
door (CLI, Python API, flows, server) passes the same gate on the same facts.
This package imports nothing heavy: ``canary`` and ``health`` import numpy and
pandas themselves.
"""
