//! The Arrow type of a PostgreSQL column, and builders that append
//! [`Value`]s to an Arrow array of that type. A value the type cannot hold
//! exactly (see `parse`) is refused, and the caller records its text.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, ListArray, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNano, IntervalUnit, TimeUnit};

use super::parse;
use crate::reading::Reading;
use crate::report::ColumnInfo;
use crate::value::Value;

/// Box is the one built-in type whose arrays separate elements with `;`.
const BOX_OID: u32 = 603;

/// A scalar Arrow type a PostgreSQL type maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Bool,
    I16,
    I32,
    I64,
    U32,
    F32,
    F64,
    Decimal(u8, i8),
    Utf8,
    Json,
    Binary,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Interval,
    Uuid,
}

/// A column's Arrow shape: a scalar, or a list of scalars (a PostgreSQL array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Scalar(Prim),
    List(Prim),
}

impl Prim {
    /// The scalar a built-in type OID (domains resolved) with `typmod` maps to.
    fn of(oid: u32, typmod: i32) -> Prim {
        match oid {
            16 => Prim::Bool,
            17 => Prim::Binary,
            20 => Prim::I64,
            21 => Prim::I16,
            23 => Prim::I32,
            26 => Prim::U32,
            114 | 3802 => Prim::Json,
            700 => Prim::F32,
            701 => Prim::F64,
            1082 => Prim::Date,
            1083 => Prim::Time,
            1114 => Prim::Timestamp,
            1184 => Prim::TimestampTz,
            1186 => Prim::Interval,
            1700 => numeric(typmod),
            2950 => Prim::Uuid,
            _ => Prim::Utf8,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Prim::Bool => DataType::Boolean,
            Prim::I16 => DataType::Int16,
            Prim::I32 => DataType::Int32,
            Prim::I64 => DataType::Int64,
            Prim::U32 => DataType::UInt32,
            Prim::F32 => DataType::Float32,
            Prim::F64 => DataType::Float64,
            Prim::Decimal(p, s) => DataType::Decimal128(p, s),
            Prim::Utf8 | Prim::Json => DataType::Utf8,
            Prim::Binary => DataType::Binary,
            Prim::Date => DataType::Date32,
            Prim::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Prim::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Prim::Time => DataType::Time64(TimeUnit::Microsecond),
            Prim::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Prim::Uuid => DataType::FixedSizeBinary(16),
        }
    }

    /// A nullable field of this type, with the canonical extension name where one applies.
    pub(crate) fn field(self, name: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        let extension = match self {
            Prim::Uuid => "arrow.uuid",
            Prim::Json => "arrow.json",
            _ => return field,
        };
        field.with_metadata(extension_metadata(extension))
    }
}

/// Field metadata naming a canonical extension type (`arrow.uuid`, `arrow.json`).
pub(crate) fn extension_metadata(name: &str) -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        ("ARROW:extension:name".to_string(), name.to_string()),
        ("ARROW:extension:metadata".to_string(), String::new()),
    ])
}

/// `numeric(p,s)` with p ≤ 38 is a Decimal128; unconstrained or wider numerics are text.
/// Scales DuckDB and polars cannot read are mapped to ones they can, the same values:
/// a negative scale (`numeric(5,-2)`, whole hundreds) widens to `Decimal128(p - s, 0)`,
/// a scale above the precision (`numeric(3,5)`) to `Decimal128(s, s)`.
fn numeric(typmod: i32) -> Prim {
    if typmod < 4 {
        return Prim::Utf8;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    // PostgreSQL 15+ stores the scale as a signed 11-bit number (scale may be negative).
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    let (precision, scale) = match scale {
        s if s < 0 => (precision - s, 0),
        s if s > precision => (s, s),
        s => (precision, s),
    };
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(p @ 1..=38), Ok(s)) => Prim::Decimal(p, s),
        _ => Prim::Utf8,
    }
}

/// Strips domains: (the type under them, the innermost domain's typmod).
fn under_domains(r: &Reading) -> (&Reading, Option<i32>) {
    match r {
        Reading::Domain { typmod, base } => {
            let (inner, m) = under_domains(base);
            (inner, m.or(Some(*typmod)))
        }
        other => (other, None),
    }
}

impl Shape {
    /// The Arrow shape of a compared column (redacted columns are text).
    pub(crate) fn of(c: &ColumnInfo) -> Shape {
        if c.redacted {
            return Shape::Scalar(Prim::Utf8);
        }
        match under_domains(&c.reading).0 {
            Reading::Array(elem) => match under_domains(elem) {
                (Reading::Builtin(BOX_OID), _) => Shape::Scalar(Prim::Utf8),
                (Reading::Builtin(oid), m) => Shape::List(Prim::of(*oid, m.unwrap_or(c.typmod))),
                _ => Shape::List(Prim::Utf8),
            },
            Reading::Builtin(_) => {
                // A domain column's own typmod is -1: the domain's (numeric(8,3)) applies.
                let typmod = if c.typmod >= 0 { c.typmod } else { under_domains(&c.reading).1.unwrap_or(-1) };
                Shape::Scalar(Prim::of(c.base_type_oid, typmod))
            }
            _ => Shape::Scalar(Prim::Utf8),
        }
    }

    /// The column's field.
    pub(crate) fn field(self, name: &str) -> Field {
        match self {
            Shape::Scalar(p) => p.field(name),
            Shape::List(p) => Field::new(name, DataType::List(Arc::new(p.field("item"))), true),
        }
    }
}

/// Builds one scalar array.
enum PrimBuilder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U32(UInt32Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Time(Time64MicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

/// The value as text, borrowed when it already is text.
fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Text(s) | Value::Literal(s) | Value::Numeric(s) | Value::Json(s) => s.as_str().into(),
        other => other.to_text().unwrap_or_default().into(),
    }
}

impl PrimBuilder {
    fn new(p: Prim) -> PrimBuilder {
        match p {
            Prim::Bool => PrimBuilder::Bool(BooleanBuilder::new()),
            Prim::I16 => PrimBuilder::I16(Int16Builder::new()),
            Prim::I32 => PrimBuilder::I32(Int32Builder::new()),
            Prim::I64 => PrimBuilder::I64(Int64Builder::new()),
            Prim::U32 => PrimBuilder::U32(UInt32Builder::new()),
            Prim::F32 => PrimBuilder::F32(Float32Builder::new()),
            Prim::F64 => PrimBuilder::F64(Float64Builder::new()),
            Prim::Decimal(pr, s) => PrimBuilder::Decimal(Decimal128Builder::new(), pr, s),
            Prim::Utf8 | Prim::Json => PrimBuilder::Utf8(StringBuilder::new()),
            Prim::Binary => PrimBuilder::Binary(BinaryBuilder::new()),
            Prim::Date => PrimBuilder::Date(Date32Builder::new()),
            Prim::Timestamp => PrimBuilder::Timestamp(TimestampMicrosecondBuilder::new(), false),
            Prim::TimestampTz => PrimBuilder::Timestamp(TimestampMicrosecondBuilder::new(), true),
            Prim::Time => PrimBuilder::Time(Time64MicrosecondBuilder::new()),
            Prim::Interval => PrimBuilder::Interval(IntervalMonthDayNanoBuilder::new()),
            Prim::Uuid => PrimBuilder::Uuid(FixedSizeBinaryBuilder::new(16)),
        }
    }

    fn append_null(&mut self) {
        match self {
            PrimBuilder::Bool(b) => b.append_null(),
            PrimBuilder::I16(b) => b.append_null(),
            PrimBuilder::I32(b) => b.append_null(),
            PrimBuilder::I64(b) => b.append_null(),
            PrimBuilder::U32(b) => b.append_null(),
            PrimBuilder::F32(b) => b.append_null(),
            PrimBuilder::F64(b) => b.append_null(),
            PrimBuilder::Decimal(b, ..) => b.append_null(),
            PrimBuilder::Utf8(b) => b.append_null(),
            PrimBuilder::Binary(b) => b.append_null(),
            PrimBuilder::Date(b) => b.append_null(),
            PrimBuilder::Timestamp(b, _) => b.append_null(),
            PrimBuilder::Time(b) => b.append_null(),
            PrimBuilder::Interval(b) => b.append_null(),
            PrimBuilder::Uuid(b) => b.append_null(),
        }
    }

    /// Appends a non-null value; `false` (nothing appended) when the type
    /// cannot hold it exactly.
    fn append(&mut self, v: &Value) -> bool {
        match (self, v) {
            (PrimBuilder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (PrimBuilder::I16(b), Value::Int(i)) => return put(b, i16::try_from(*i).ok()),
            (PrimBuilder::I32(b), Value::Int(i)) => return put(b, i32::try_from(*i).ok()),
            (PrimBuilder::I64(b), Value::Int(i)) => b.append_value(*i),
            (PrimBuilder::U32(b), Value::Int(i)) => return put(b, u32::try_from(*i).ok()),
            (PrimBuilder::F64(b), Value::Float(f)) => b.append_value(*f),
            // A float8 read under a float4 column type (a type change) must survive the narrowing.
            (PrimBuilder::F32(b), Value::Float(f)) => {
                return put(b, Some(*f as f32).filter(|n| n.is_nan() || *n as f64 == *f))
            }
            (PrimBuilder::Binary(b), Value::Bytes(x)) => b.append_value(x),
            (PrimBuilder::Utf8(b), v) => b.append_value(text(v)),
            (me, v) => return me.append_text(&text(v)),
        }
        true
    }

    /// Appends a value from its PostgreSQL text form (array elements, and
    /// values of another variant than the column's type reads as).
    fn append_text(&mut self, s: &str) -> bool {
        match self {
            PrimBuilder::Bool(b) => match s {
                "t" | "true" => {
                    b.append_value(true);
                    true
                }
                "f" | "false" => {
                    b.append_value(false);
                    true
                }
                _ => false,
            },
            PrimBuilder::I16(b) => put(b, s.parse().ok()),
            PrimBuilder::I32(b) => put(b, s.parse().ok()),
            PrimBuilder::I64(b) => put(b, s.parse().ok()),
            PrimBuilder::U32(b) => put(b, s.parse().ok()),
            PrimBuilder::F32(b) => put(b, s.parse().ok()),
            PrimBuilder::F64(b) => put(b, s.parse().ok()),
            PrimBuilder::Decimal(b, p, sc) => put(b, parse::decimal(s, *p, *sc)),
            PrimBuilder::Utf8(b) => {
                b.append_value(s);
                true
            }
            PrimBuilder::Binary(b) => match parse::bytea(s) {
                Some(x) => {
                    b.append_value(x);
                    true
                }
                None => false,
            },
            PrimBuilder::Date(b) => put(b, parse::date(s)),
            PrimBuilder::Timestamp(b, tz) => put(b, parse::timestamp(s, *tz)),
            PrimBuilder::Time(b) => put(b, parse::time(s)),
            PrimBuilder::Interval(b) => put(b, parse::interval(s).map(|(m, d, n)| IntervalMonthDayNano::new(m, d, n))),
            PrimBuilder::Uuid(b) => parse::uuid(s).is_some_and(|u| b.append_value(u).is_ok()),
        }
    }

    fn finish(&mut self, prim: Prim) -> ArrayRef {
        let array: ArrayRef = match self {
            PrimBuilder::Bool(b) => Arc::new(b.finish()),
            PrimBuilder::I16(b) => Arc::new(b.finish()),
            PrimBuilder::I32(b) => Arc::new(b.finish()),
            PrimBuilder::I64(b) => Arc::new(b.finish()),
            PrimBuilder::U32(b) => Arc::new(b.finish()),
            PrimBuilder::F32(b) => Arc::new(b.finish()),
            PrimBuilder::F64(b) => Arc::new(b.finish()),
            PrimBuilder::Decimal(b, p, s) => Arc::new(b.finish().with_data_type(DataType::Decimal128(*p, *s))),
            PrimBuilder::Utf8(b) => Arc::new(b.finish()),
            PrimBuilder::Binary(b) => Arc::new(b.finish()),
            PrimBuilder::Date(b) => Arc::new(b.finish()),
            PrimBuilder::Timestamp(b, _) => Arc::new(b.finish().with_data_type(prim.data_type())),
            PrimBuilder::Time(b) => Arc::new(b.finish()),
            PrimBuilder::Interval(b) => Arc::new(b.finish()),
            PrimBuilder::Uuid(b) => Arc::new(b.finish()),
        };
        array
    }
}

/// Appends `v` when it is `Some`; whether it did.
fn put<T: arrow::datatypes::ArrowPrimitiveType>(
    b: &mut arrow::array::PrimitiveBuilder<T>,
    v: Option<T::Native>,
) -> bool {
    v.map(|v| b.append_value(v)).is_some()
}

/// Builds one column of a record batch (a scalar or a list column).
pub(crate) struct ColumnBuilder {
    shape: Shape,
    values: PrimBuilder,
    /// Lists: offsets into `values` and which rows are non-null.
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl ColumnBuilder {
    pub(crate) fn new(shape: Shape) -> ColumnBuilder {
        let prim = match shape {
            Shape::Scalar(p) | Shape::List(p) => p,
        };
        ColumnBuilder { shape, values: PrimBuilder::new(prim), offsets: vec![0], valid: vec![] }
    }

    pub(crate) fn append_null(&mut self) {
        match self.shape {
            Shape::Scalar(_) => self.values.append_null(),
            Shape::List(_) => {
                self.offsets.push(*self.offsets.last().unwrap_or(&0));
                self.valid.push(false);
            }
        }
    }

    /// Appends a value; a value the column's type cannot hold exactly is
    /// appended as null and `false` returned, so the caller keeps its text.
    pub(crate) fn append(&mut self, v: &Value) -> bool {
        if matches!(v, Value::Null) {
            self.append_null();
            return true;
        }
        let ok = match self.shape {
            Shape::Scalar(_) => self.values.append(v),
            Shape::List(_) => self.append_list(&text(v)),
        };
        if !ok {
            self.append_null();
        }
        ok
    }

    /// Appends a one-dimensional array: all elements or none.
    fn append_list(&mut self, s: &str) -> bool {
        let Some(elems) = parse::array(s) else { return false };
        // Check every element first, so that a refused array leaves no elements behind.
        let mut probe = PrimBuilder::new(self.prim());
        if !elems.iter().flatten().all(|e| probe.append_text(e)) {
            return false;
        }
        for e in &elems {
            match e {
                Some(e) => {
                    self.values.append_text(e);
                }
                None => self.values.append_null(),
            }
        }
        let end = self.offsets.last().unwrap_or(&0) + elems.len() as i32;
        self.offsets.push(end);
        self.valid.push(true);
        true
    }

    fn prim(&self) -> Prim {
        match self.shape {
            Shape::Scalar(p) | Shape::List(p) => p,
        }
    }

    /// The array of the rows appended since the last call.
    pub(crate) fn finish(&mut self, field: &FieldRef) -> Result<ArrayRef, arrow::error::ArrowError> {
        let values = self.values.finish(self.prim());
        match (self.shape, field.data_type()) {
            (Shape::List(_), DataType::List(item)) => {
                let offsets = OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(&mut self.valid));
                Ok(Arc::new(ListArray::try_new(item.clone(), offsets, values, Some(nulls))?))
            }
            _ => Ok(values),
        }
    }

    /// Rows appended since the last [`ColumnBuilder::finish`].
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match self.shape {
            Shape::Scalar(_) => self.values_len(),
            Shape::List(_) => self.valid.len(),
        }
    }

    #[cfg(test)]
    fn values_len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match &self.values {
            PrimBuilder::Bool(b) => b.len(),
            PrimBuilder::I16(b) => b.len(),
            PrimBuilder::I32(b) => b.len(),
            PrimBuilder::I64(b) => b.len(),
            PrimBuilder::U32(b) => b.len(),
            PrimBuilder::F32(b) => b.len(),
            PrimBuilder::F64(b) => b.len(),
            PrimBuilder::Decimal(b, ..) => b.len(),
            PrimBuilder::Utf8(b) => b.len(),
            PrimBuilder::Binary(b) => b.len(),
            PrimBuilder::Date(b) => b.len(),
            PrimBuilder::Timestamp(b, _) => b.len(),
            PrimBuilder::Time(b) => b.len(),
            PrimBuilder::Interval(b) => b.len(),
            PrimBuilder::Uuid(b) => b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(type_oid: u32, typmod: i32, reading: Reading) -> ColumnInfo {
        ColumnInfo { base_type_oid: type_oid, typmod, reading, ..ColumnInfo::text("c") }
    }

    #[test]
    fn numeric_typmods() {
        // numeric(12,2): typmod = (12 << 16 | 2) + 4.
        assert_eq!(numeric((12 << 16 | 2) + 4), Prim::Decimal(12, 2));
        assert_eq!(numeric((38 << 16) + 4), Prim::Decimal(38, 0));
        assert_eq!(numeric((39 << 16 | 2) + 4), Prim::Utf8);
        assert_eq!(numeric(-1), Prim::Utf8);
        // numeric(5,-2) (PostgreSQL 15+): scale -2 as 11 bits is 0x7fe.
        assert_eq!(numeric((5 << 16 | 0x7fe) + 4), Prim::Decimal(7, 0));
        assert_eq!(numeric((37 << 16 | 0x7fe) + 4), Prim::Utf8);
        assert_eq!(numeric((3 << 16 | 5) + 4), Prim::Decimal(5, 5));
    }

    #[test]
    fn shapes() {
        let int_array = col(1007, -1, Reading::Array(Box::new(Reading::Builtin(23))));
        assert_eq!(Shape::of(&int_array), Shape::List(Prim::I32));
        let box_array = col(1020, -1, Reading::Array(Box::new(Reading::Builtin(603))));
        assert_eq!(Shape::of(&box_array), Shape::Scalar(Prim::Utf8));
        let dom = col(
            1700,
            (8 << 16 | 3) + 4,
            Reading::Domain { typmod: (8 << 16 | 3) + 4, base: Box::new(Reading::Builtin(1700)) },
        );
        assert_eq!(Shape::of(&dom), Shape::Scalar(Prim::Decimal(8, 3)));
        let mut redacted = col(23, -1, Reading::Builtin(23));
        redacted.redacted = true;
        assert_eq!(Shape::of(&redacted), Shape::Scalar(Prim::Utf8));
        let en = col(16500, -1, Reading::Enum(Default::default()));
        assert_eq!(Shape::of(&en), Shape::Scalar(Prim::Utf8));
    }

    #[test]
    fn refused_values_become_null() {
        let mut b = ColumnBuilder::new(Shape::Scalar(Prim::Date));
        assert!(b.append(&Value::Literal("2024-01-02".into())));
        assert!(!b.append(&Value::Literal("infinity".into())));
        assert_eq!(b.len(), 2);
        let mut l = ColumnBuilder::new(Shape::List(Prim::I32));
        assert!(l.append(&Value::Literal("{1,NULL}".into())));
        assert!(!l.append(&Value::Literal("{{1},{2}}".into())));
        assert!(!l.append(&Value::Literal("{1,x}".into())));
        assert_eq!(l.len(), 3);
        let field = Arc::new(Shape::List(Prim::I32).field("c"));
        let a = l.finish(&field).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.null_count(), 2);
    }
}
