//! The `spool` command-line tool.
