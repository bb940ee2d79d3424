//! The two serializers of values that are not JSON values of their own: map keys and the
//! raw text of a `RawValue`.

use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

use super::{Io, JsonOut, put_str};

fn key_must_be_a_string() -> serde_json::Error {
    ser::Error::custom("key must be a string")
}

fn not_raw() -> serde_json::Error {
    ser::Error::custom("a RawValue holds a string of JSON")
}

/// Serializer methods that refuse their value with `$error()`; `<T>` marks the generic ones.
macro_rules! refuse {
    ($error:ident: $($method:ident $(<$t:ident>)? ($($arg:ty),*) -> $ret:ty;)*) => {
        $(
            fn $method $(<$t: Serialize + ?Sized>)? (self, $(_: $arg),*) -> serde_json::Result<$ret> {
                Err($error())
            }
        )*
    };
}

/// The methods of values that are not scalars (containers, units, variants with content).
macro_rules! refuse_compound {
    ($error:ident) => {
        refuse! { $error:
            serialize_bytes(&[u8]) -> ();
            serialize_none() -> ();
            serialize_unit() -> ();
            serialize_unit_struct(&'static str) -> ();
            serialize_newtype_variant<T>(&'static str, u32, &'static str, &T) -> ();
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct(&'static str, usize) -> Self::SerializeStruct;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }
    };
}

/// Map keys, as serde_json writes them: strings, and numbers, booleans and chars quoted.
pub(super) struct KeySerializer<'o, O: ?Sized> {
    pub(super) out: &'o mut O,
}

/// Key methods that write the value with serde_json's formatter, between quotes.
macro_rules! quoted {
    ($($method:ident($ty:ty) => $write:ident;)*) => {
        $(
            fn $method(self, v: $ty) -> serde_json::Result<()> {
                self.out.put(b"\"");
                let _ = CompactFormatter.$write(&mut Io(&mut *self.out), v);
                self.out.put(b"\"");
                Ok(())
            }
        )*
    };
}

fn finite_key(finite: bool) -> serde_json::Result<()> {
    if finite {
        Ok(())
    } else {
        Err(ser::Error::custom(
            "float key must be finite (got NaN or +/-inf)",
        ))
    }
}

impl<O: JsonOut + ?Sized> ser::Serializer for KeySerializer<'_, O> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), serde_json::Error>;
    type SerializeTuple = Impossible<(), serde_json::Error>;
    type SerializeTupleStruct = Impossible<(), serde_json::Error>;
    type SerializeTupleVariant = Impossible<(), serde_json::Error>;
    type SerializeMap = Impossible<(), serde_json::Error>;
    type SerializeStruct = Impossible<(), serde_json::Error>;
    type SerializeStructVariant = Impossible<(), serde_json::Error>;

    fn serialize_str(self, v: &str) -> serde_json::Result<()> {
        put_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> serde_json::Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> serde_json::Result<()> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        value.serialize(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<()> {
        value.serialize(self)
    }
    quoted! {
        serialize_bool(bool) => write_bool;
        serialize_i8(i8) => write_i8;
        serialize_i16(i16) => write_i16;
        serialize_i32(i32) => write_i32;
        serialize_i64(i64) => write_i64;
        serialize_i128(i128) => write_i128;
        serialize_u8(u8) => write_u8;
        serialize_u16(u16) => write_u16;
        serialize_u32(u32) => write_u32;
        serialize_u64(u64) => write_u64;
        serialize_u128(u128) => write_u128;
    }
    fn serialize_f32(self, v: f32) -> serde_json::Result<()> {
        finite_key(v.is_finite())?;
        self.out.put(b"\"");
        let _ = CompactFormatter.write_f32(&mut Io(&mut *self.out), v);
        self.out.put(b"\"");
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> serde_json::Result<()> {
        finite_key(v.is_finite())?;
        self.out.put(b"\"");
        let _ = CompactFormatter.write_f64(&mut Io(&mut *self.out), v);
        self.out.put(b"\"");
        Ok(())
    }
    refuse_compound!(key_must_be_a_string);
}

/// A `RawValue`'s field: the JSON text itself, written unchanged.
pub(super) struct RawEmitter<'o, O: ?Sized> {
    pub(super) out: &'o mut O,
}

impl<O: JsonOut + ?Sized> ser::Serializer for RawEmitter<'_, O> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), serde_json::Error>;
    type SerializeTuple = Impossible<(), serde_json::Error>;
    type SerializeTupleStruct = Impossible<(), serde_json::Error>;
    type SerializeTupleVariant = Impossible<(), serde_json::Error>;
    type SerializeMap = Impossible<(), serde_json::Error>;
    type SerializeStruct = Impossible<(), serde_json::Error>;
    type SerializeStructVariant = Impossible<(), serde_json::Error>;

    fn serialize_str(self, v: &str) -> serde_json::Result<()> {
        self.out.put(v.as_bytes());
        Ok(())
    }
    refuse! { not_raw:
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_some<T>(&T) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_newtype_struct<T>(&'static str, &T) -> ();
    }
    refuse_compound!(not_raw);
}
