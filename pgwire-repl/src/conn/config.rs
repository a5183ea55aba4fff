//! Connection configuration.
