"""The send path, one module per stage, in the order one send goes through them:

scheduler (a due occurrence becomes a Run) -> planning (the run's ledger: one Delivery per recipient) ->
claiming (a worker takes a slice of due rows) -> sending (re-check, render, hand to the channel adapter) ->
outcomes (each result written to its row, failures classified, retries scheduled) -> completion (the run and
its campaign complete); recovery puts back what dead workers and lost jobs left, and dispatch says which queue
a run's jobs go on.

Every function here is safe to run twice and from several processes at once: uniqueness lives in database
constraints, work is claimed with one conditional UPDATE, and every outcome write carries the claim token.
"""
