//! Embedded adapters: one SQLite file for queue, store and encrypted secrets.
