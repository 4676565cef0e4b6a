import pipelines  # noqa: F401  (its warning filter applies before note-seq is imported)
