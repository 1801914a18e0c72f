//! What the app's Redis and PostgreSQL stores share.

pub(crate) mod pg;
pub(crate) mod redis;
