"""Help texts that several commands share, so that an option means the same in each."""

# What "-" and --format mean in every command that reads texts (embed, predict).
INPUT_HELP = (
    "CSV, TSV, JSONL or Parquet file with a text column, or - for stdin, read as CSV with a header row unless --format "
    "says otherwise."
)
FORMAT_HELP = (
    "csv, tsv, jsonl, parquet, or lines (one text per line, no header): how to read INPUT, instead of its file "
    "extension; for stdin (-) the default is csv."
)
