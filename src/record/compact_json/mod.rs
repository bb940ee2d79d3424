//! Compact JSON, byte for byte what `serde_json::to_writer` writes, but faster at strings.
//!
//! serde_json escapes every string one byte at a time and writes each run between escapes
//! through the writer separately; on a report of many small records (a jsonl message line has
//! some twenty keys and short values) that was a quarter of the run's instructions. This
//! serializer checks eight bytes at a time, writes struct field names without scanning them
//! (they are identifiers or our own renames; debug builds assert that they need no escape) and
//! writes through [`JsonOut`], a sink that cannot fail. Numbers are formatted by serde_json's own `CompactFormatter`, so they cannot differ;
//! `serde_json::value::RawValue` is written raw, as serde_json does. Pretty output stays with
//! serde_json. serde_json offers no hook to replace its string escaping (its `Formatter` only
//! sees the runs), hence a serializer of our own.

use serde::ser::{self, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

/// Where the JSON goes. Writing cannot fail: a sink that can remembers its error itself.
pub trait JsonOut {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// A buffer to append to with room for `n` more bytes, if the sink has one: appending
    /// there saves the sink's check of each piece.
    #[inline]
    fn buffer(&mut self, _n: usize) -> Option<&mut Vec<u8>> {
        None
    }

    /// Appends `bytes` between double quotes (a string that needs no escape).
    #[inline]
    fn put_quoted(&mut self, bytes: &[u8]) {
        self.put(b"\"");
        self.put(bytes);
        self.put(b"\"");
    }
}

impl JsonOut for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn buffer(&mut self, n: usize) -> Option<&mut Vec<u8>> {
        self.reserve(n);
        Some(self)
    }
}

/// Writes `value` as compact JSON to `out`. Errors are those of the value's `Serialize` (a map
/// key that is not a string, a custom error), never of the sink.
pub fn write<O: JsonOut + ?Sized, T: Serialize + ?Sized>(
    out: &mut O,
    value: &T,
) -> serde_json::Result<()> {
    value.serialize(Serializer { out })
}

/// `value` as a compact JSON string.
#[cfg(test)]
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut bytes = Vec::new();
    write(&mut bytes, value)?;
    // Only valid UTF-8 goes in: strings are copied whole or escaped, numbers are ASCII.
    Ok(String::from_utf8(bytes).expect("bug: JSON is UTF-8"))
}

/// The name serde_json's `RawValue` serializes under (a struct of one field of that name
/// holding the raw JSON). Not public API of serde_json, but stable since RawValue exists; the
/// spool's tests (a spooled listing equals the held one) fail if it ever changes.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// JSON text that this program formatted itself, written into a report as it is, like a
/// `RawValue` but without parsing it again to check it (`RawValue::from_string` does: for a
/// spooled message listing that cost a full parse of every record read back). Serializes the
/// way `RawValue` does, so serde_json's pretty writer takes it as well as ours.
pub struct TrustedJson<'a>(pub &'a str);

impl Serialize for TrustedJson<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::SerializeStruct;
        let mut raw = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(RAW_VALUE_TOKEN, self.0)?;
        raw.end()
    }
}

struct Serializer<'o, O: ?Sized> {
    out: &'o mut O,
}

/// Adapts a [`JsonOut`] to `io::Write` for serde_json's number formatting.
struct Io<'o, O: ?Sized>(&'o mut O);

impl<O: JsonOut + ?Sized> std::io::Write for Io<'_, O> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.put(buf);
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.put(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Formats a number with serde_json's formatter (the sink cannot fail, so neither can this).
macro_rules! number {
    ($out:expr, $method:ident, $value:expr) => {{
        let _ = CompactFormatter.$method(&mut Io(&mut *$out), $value);
    }};
}

/// Marks the bytes of `word` that are `"`, `\\` or control characters with their high bit.
/// The lowest mark is exact (the "has a byte less than n" and "has a zero byte" bit tricks
/// can mark a byte above a marked one wrongly, never below).
#[inline]
fn special_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    control | quote | backslash
}

#[inline]
fn is_special(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The index of the first byte at or after `from` that needs an escape, else `bytes.len()`.
#[inline]
fn first_special(bytes: &[u8], from: usize) -> usize {
    let len = bytes.len();
    let mut i = from;
    while i + 8 <= len {
        let mask = special_mask(word_at(bytes, i));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = len - i;
    if rest == 0 {
        return len;
    }
    if len >= 8 {
        // The last eight bytes, shifted so that the unread ones come first; the zeros shifted
        // in are marked too, but only past the unread ones.
        let mask = special_mask(word_at(bytes, len - 8) >> (8 * (8 - rest)));
        let first = (mask.trailing_zeros() / 8) as usize;
        return if first < rest { i + first } else { len };
    }
    // Shorter than a word (most keys and many values): two overlapping halves say whether
    // any byte needs an escape, and almost none does.
    if rest >= 4 {
        let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four"));
        let word = u64::from(half(i)) | (u64::from(half(len - 4)) << 32);
        if special_mask(word) == 0 {
            return len;
        }
    }
    bytes[i..]
        .iter()
        .position(|&b| is_special(b))
        .map_or(len, |at| i + at)
}

/// Writes the escape of one special byte, as serde_json does.
fn put_escape<O: JsonOut + ?Sized>(out: &mut O, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => 0,
    };
    if short != 0 {
        out.put(&[b'\\', short]);
    } else {
        out.put(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]);
    }
}

/// Writes `text` as a JSON string.
#[inline]
fn put_str<O: JsonOut + ?Sized>(out: &mut O, text: &str) {
    let bytes = text.as_bytes();
    let special = first_special(bytes, 0);
    if special == bytes.len() {
        out.put_quoted(bytes);
        return;
    }
    // Escape-dense strings (JSON messages inside JSON) go straight into the sink's buffer
    // when it has room for the worst case (every byte from the first escape on as `\u00XX`).
    let worst = special + 6 * (bytes.len() - special) + 2;
    match out.buffer(worst) {
        Some(buffer) => put_escaped(buffer, bytes, special),
        None => put_escaped(out, bytes, special),
    }
}

/// Writes `bytes` as a JSON string whose first byte to escape is at `special`.
fn put_escaped<O: JsonOut + ?Sized>(out: &mut O, bytes: &[u8], mut special: usize) {
    out.put(b"\"");
    let mut run_start = 0;
    while special < bytes.len() {
        out.put(&bytes[run_start..special]);
        put_escape(out, bytes[special]);
        run_start = special + 1;
        special = first_special(bytes, run_start);
    }
    out.put(&bytes[run_start..]);
    out.put(b"\"");
}

impl<'o, O: JsonOut + ?Sized> ser::Serializer for Serializer<'o, O> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Compound<'o, O>;
    type SerializeTuple = Compound<'o, O>;
    type SerializeTupleStruct = Compound<'o, O>;
    type SerializeTupleVariant = Compound<'o, O>;
    type SerializeMap = Compound<'o, O>;
    type SerializeStruct = Compound<'o, O>;
    type SerializeStructVariant = Compound<'o, O>;

    fn serialize_bool(self, v: bool) -> serde_json::Result<()> {
        self.out.put(if v { b"true" } else { b"false" });
        Ok(())
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
        number!(self.out, write_i64, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> serde_json::Result<()> {
        number!(self.out, write_i128, v);
        Ok(())
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
        number!(self.out, write_u64, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> serde_json::Result<()> {
        number!(self.out, write_u128, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> serde_json::Result<()> {
        if v.is_finite() {
            number!(self.out, write_f32, v);
        } else {
            self.out.put(b"null");
        }
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> serde_json::Result<()> {
        if v.is_finite() {
            number!(self.out, write_f64, v);
        } else {
            self.out.put(b"null");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> serde_json::Result<()> {
        put_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> serde_json::Result<()> {
        put_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> serde_json::Result<()> {
        let _ = CompactFormatter.write_byte_array(&mut Io(&mut *self.out), v);
        Ok(())
    }
    fn serialize_none(self) -> serde_json::Result<()> {
        self.out.put(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> serde_json::Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> serde_json::Result<()> {
        self.serialize_none()
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
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.out.put(b"{");
        put_str(self.out, variant);
        self.out.put(b":");
        value.serialize(Serializer {
            out: &mut *self.out,
        })?;
        self.out.put(b"}");
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> serde_json::Result<Compound<'o, O>> {
        self.out.put(b"[");
        Ok(Compound::new(self.out, b"]"))
    }
    fn serialize_tuple(self, len: usize) -> serde_json::Result<Compound<'o, O>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> serde_json::Result<Compound<'o, O>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Compound<'o, O>> {
        self.out.put(b"{");
        put_str(self.out, variant);
        self.out.put(b":[");
        Ok(Compound::new(self.out, b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> serde_json::Result<Compound<'o, O>> {
        self.out.put(b"{");
        Ok(Compound::new(self.out, b"}"))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> serde_json::Result<Compound<'o, O>> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound {
                out: self.out,
                first: true,
                close: b"",
                raw: true,
            });
        }
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> serde_json::Result<Compound<'o, O>> {
        self.out.put(b"{");
        put_str(self.out, variant);
        self.out.put(b":{");
        Ok(Compound::new(self.out, b"}}"))
    }
}

/// An array or object being written: `close` ends it.
pub struct Compound<'o, O: ?Sized> {
    out: &'o mut O,
    first: bool,
    close: &'static [u8],
    /// A `RawValue`: its one field is written as it is.
    raw: bool,
}

impl<'o, O: JsonOut + ?Sized> Compound<'o, O> {
    fn new(out: &'o mut O, close: &'static [u8]) -> Self {
        Compound {
            out,
            first: true,
            close,
            raw: false,
        }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.put(b",");
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        self.comma();
        value.serialize(Serializer {
            out: &mut *self.out,
        })
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        if self.raw {
            return value.serialize(RawEmitter {
                out: &mut *self.out,
            });
        }
        self.comma();
        // A struct's field names are Rust identifiers or our own renames, never in need of an
        // escape; not scanning them halves the strings to scan (most strings are names).
        debug_assert_eq!(
            first_special(key.as_bytes(), 0),
            key.len(),
            "bug: field name {key:?} needs an escape"
        );
        self.out.put_quoted(key.as_bytes());
        self.out.put(b":");
        value.serialize(Serializer {
            out: &mut *self.out,
        })
    }

    fn finish(self) -> serde_json::Result<()> {
        self.out.put(self.close);
        Ok(())
    }
}

/// The serde traits of arrays (elements, or unnamed fields) and of objects (named fields).
macro_rules! compound {
    (elements: $($trait:ident::$method:ident),*) => {$(
        impl<O: JsonOut + ?Sized> ser::$trait for Compound<'_, O> {
            type Ok = ();
            type Error = serde_json::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
                self.element(value)
            }
            fn end(self) -> serde_json::Result<()> {
                self.finish()
            }
        }
    )*};
    (fields: $($trait:ident),*) => {$(
        impl<O: JsonOut + ?Sized> ser::$trait for Compound<'_, O> {
            type Ok = ();
            type Error = serde_json::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> serde_json::Result<()> {
                self.field(key, value)
            }
            fn end(self) -> serde_json::Result<()> {
                self.finish()
            }
        }
    )*};
}

compound!(elements: SerializeSeq::serialize_element, SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field, SerializeTupleVariant::serialize_field);
compound!(fields: SerializeStruct, SerializeStructVariant);

impl<O: JsonOut + ?Sized> ser::SerializeMap for Compound<'_, O> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> serde_json::Result<()> {
        self.comma();
        key.serialize(KeySerializer {
            out: &mut *self.out,
        })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        self.out.put(b":");
        value.serialize(Serializer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> serde_json::Result<()> {
        self.finish()
    }
}

mod keys;
use keys::{KeySerializer, RawEmitter};

#[cfg(test)]
mod tests;
