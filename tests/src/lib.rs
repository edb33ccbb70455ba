//! End-to-end tests live in `tests/suite`; this library is empty.
