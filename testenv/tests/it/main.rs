//! testenv against the real PostgreSQL it finds: one binary, one module per concern.

mod auth;
mod lifecycle;
mod standby;
