//! Helpers for the OpenAPI descriptions of the routes: schemas built from the library's own
//! values (every state, status or kind it serialises), for fields whose Rust type is text.

use utoipa::openapi::{Object, ObjectBuilder, Type};

/// A string schema that takes one of `values`.
pub(crate) fn text_enum<I, S>(values: I, description: &str) -> Object
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(Into::into)))
        .description(Some(description))
        .build()
}

/// A schema that is `null` or a string taking one of `values`.
pub(crate) fn nullable_text_enum<I, S>(values: I, description: &str) -> Object
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let values = values
        .into_iter()
        .map(|v| serde_json::Value::String(v.into()))
        .chain([serde_json::Value::Null]);
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}
