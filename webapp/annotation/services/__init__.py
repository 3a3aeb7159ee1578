"""Writes of the annotation app, one module per concept: ``campaigns`` (campaigns, their
systems and outputs, items), ``assignments`` (leases), ``votes`` and ``judge_runs``.

Views, commands and Celery tasks call these; nothing else writes annotation models.

Concurrency rules, in one place:

Concurrency rules, in one place:

* An item's slots are its counted votes plus the live leases on it. Every claim and every vote
  takes the item's row lock first (``SELECT ... FOR UPDATE``; on PostgreSQL the claim skips
  items another annotator is claiming right now with ``SKIP LOCKED``) and recounts inside the
  lock, so two annotators never take the same last slot. On SQLite, where there is no row
  lock, the claim is an optimistic conditional update of ``Item.claim_version`` (SQLite also
  runs one writer at a time, so the recount inside the transaction holds).
* One vote per (item, annotator) is a database unique constraint. A second submit, even at
  the same instant, hits the constraint; the ``IntegrityError`` is caught in a savepoint and
  the existing vote is returned as the result, so the duplicate still reads as a success.
* One annotator's claims are serialized by a lock on their user row, so two tabs (or a double
  submit) asking for the next item at once get the same lease, not two.
* The vote request records the vote and leases the next item in one transaction
  (:func:`vote_and_claim_next`): one commit per vote.
"""
