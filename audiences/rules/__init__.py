"""The audience rule language: the typed tree and its validation (tree), the values of comparisons (values),
the compiler to an ORM filter (sql), the same meaning evaluated in Python (evaluation), the builder's form
inputs to rule JSON and back (builder), and a rule in words (words). docs/audiences.md is the reference."""
