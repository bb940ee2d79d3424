//! The two serializers of values that are not JSON values of their own: map keys and the
//! raw text of a `RawValue`.

use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

use super::{Io, JsonOut, put_str};

fn key_must_be_a_string() -> serde_json::Error {
    ser::Error::custom("key must be a string")
}

/// Map keys, as serde_json writes them: strings, and numbers, booleans and chars quoted.
pub(super) struct KeySerializer<'o, O: ?Sized> {
    pub(super) out: &'o mut O,
}

impl<O: JsonOut + ?Sized> KeySerializer<'_, O> {
    fn quoted(self, f: impl FnOnce(&mut Io<'_, O>)) -> serde_json::Result<()> {
        self.out.put(b"\"");
        f(&mut Io(&mut *self.out));
        self.out.put(b"\"");
        Ok(())
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
        put_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
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
    fn serialize_bool(self, v: bool) -> serde_json::Result<()> {
        self.quoted(|io| {
            let _ = CompactFormatter.write_bool(io, v);
        })
    }
    fn serialize_i8(self, v: i8) -> serde_json::Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> serde_json::Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> serde_json::Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> serde_json::Result<()> {
        self.quoted(|io| {
            let _ = CompactFormatter.write_i64(io, v);
        })
    }
    fn serialize_i128(self, v: i128) -> serde_json::Result<()> {
        self.quoted(|io| {
            let _ = CompactFormatter.write_i128(io, v);
        })
    }
    fn serialize_u8(self, v: u8) -> serde_json::Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> serde_json::Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> serde_json::Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> serde_json::Result<()> {
        self.quoted(|io| {
            let _ = CompactFormatter.write_u64(io, v);
        })
    }
    fn serialize_u128(self, v: u128) -> serde_json::Result<()> {
        self.quoted(|io| {
            let _ = CompactFormatter.write_u128(io, v);
        })
    }
    fn serialize_f32(self, v: f32) -> serde_json::Result<()> {
        if !v.is_finite() {
            return Err(ser::Error::custom(
                "float key must be finite (got NaN or +/-inf)",
            ));
        }
        self.quoted(|io| {
            let _ = CompactFormatter.write_f32(io, v);
        })
    }
    fn serialize_f64(self, v: f64) -> serde_json::Result<()> {
        if !v.is_finite() {
            return Err(ser::Error::custom(
                "float key must be finite (got NaN or +/-inf)",
            ));
        }
        self.quoted(|io| {
            let _ = CompactFormatter.write_f64(io, v);
        })
    }
    fn serialize_bytes(self, _v: &[u8]) -> serde_json::Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> serde_json::Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> serde_json::Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> serde_json::Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> serde_json::Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> serde_json::Result<Self::SerializeSeq> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> serde_json::Result<Self::SerializeTuple> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeTupleStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeTupleVariant> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> serde_json::Result<Self::SerializeMap> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeStructVariant> {
        Err(key_must_be_a_string())
    }
}

/// A `RawValue`'s field: the JSON text itself, written unchanged.
pub(super) struct RawEmitter<'o, O: ?Sized> {
    pub(super) out: &'o mut O,
}

fn not_raw() -> serde_json::Error {
    ser::Error::custom("a RawValue holds a string of JSON")
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
    fn serialize_bool(self, _v: bool) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_i64(self, _v: i64) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_u64(self, _v: u64) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_i8(self, _v: i8) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_i16(self, _v: i16) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_i32(self, _v: i32) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_u8(self, _v: u8) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_u16(self, _v: u16) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_u32(self, _v: u32) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_f32(self, _v: f32) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_f64(self, _v: f64) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_char(self, _v: char) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_bytes(self, _v: &[u8]) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_none(self) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_unit(self) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> serde_json::Result<()> {
        Err(not_raw())
    }
    fn serialize_seq(self, _len: Option<usize>) -> serde_json::Result<Self::SerializeSeq> {
        Err(not_raw())
    }
    fn serialize_tuple(self, _len: usize) -> serde_json::Result<Self::SerializeTuple> {
        Err(not_raw())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeTupleStruct> {
        Err(not_raw())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeTupleVariant> {
        Err(not_raw())
    }
    fn serialize_map(self, _len: Option<usize>) -> serde_json::Result<Self::SerializeMap> {
        Err(not_raw())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeStruct> {
        Err(not_raw())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Self::SerializeStructVariant> {
        Err(not_raw())
    }
}
