"""Names of the file formats emaudit reads and writes (kept apart so the CLI loads without pandas)."""

IMPORT_FORMATS = ("auto", "betley", "organisms", "jsonl")
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
DEFAULT_IMPORT_JUDGE = "gpt-4o"
