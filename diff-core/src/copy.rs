//! Binary COPY framing. tokio-postgres hands us one `CopyData` message per
//! row; the first also carries the 19-byte file header, the last is the
//! trailer. Rows stay in the received buffers: a parsed batch is a list of
//! (offset, length) pairs into them, so nothing is copied per row.

use bytes::Bytes;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A batch of rows from one side, with every field located.
#[derive(Default)]
pub struct Batch {
    msgs: Vec<Bytes>,
    /// For each row: index into `msgs`.
    rows: Vec<u32>,
    /// `ncols` entries per row: (offset, length or -1 for NULL).
    fields: Vec<(u32, i32)>,
    ncols: usize,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Field `col` of row `row`; `None` is SQL NULL.
    #[inline]
    pub fn field(&self, row: usize, col: usize) -> Option<&[u8]> {
        let (off, len) = self.fields[row * self.ncols + col];
        if len < 0 {
            return None;
        }
        let msg = &self.msgs[self.rows[row] as usize];
        Some(&msg[off as usize..off as usize + len as usize])
    }

    /// Bytes of all messages in the batch.
    pub fn bytes(&self) -> u64 {
        self.msgs.iter().map(|m| m.len() as u64).sum()
    }
}

/// Parses a side's COPY messages into batches.
pub struct Decoder {
    ncols: usize,
    header_seen: bool,
    /// The trailer was read.
    pub finished: bool,
}

impl Decoder {
    /// A decoder for rows of `ncols` fields.
    pub fn new(ncols: usize) -> Decoder {
        Decoder { ncols, header_seen: false, finished: false }
    }

    /// Locates every field of every row in `msgs`.
    pub fn decode(&mut self, msgs: Vec<Bytes>) -> Result<Batch, String> {
        let mut batch = Batch {
            rows: Vec::with_capacity(msgs.len()),
            fields: Vec::with_capacity(msgs.len() * self.ncols),
            msgs: Vec::new(),
            ncols: self.ncols,
        };
        for (i, msg) in msgs.iter().enumerate() {
            let mut pos = 0usize;
            if !self.header_seen {
                pos = header_len(msg)?;
                self.header_seen = true;
            }
            while pos < msg.len() {
                if self.finished {
                    return Err("data after the trailer".into());
                }
                pos = self.tuple(msg, pos, i as u32, &mut batch)?;
            }
        }
        batch.msgs = msgs;
        Ok(batch)
    }

    fn tuple(&mut self, msg: &[u8], mut pos: usize, index: u32, batch: &mut Batch) -> Result<usize, String> {
        let n = read_i16(msg, pos)?;
        pos += 2;
        if n == -1 {
            self.finished = true;
            return Ok(pos);
        }
        if n as usize != self.ncols {
            return Err(format!("row has {n} fields, expected {}", self.ncols));
        }
        batch.rows.push(index);
        for _ in 0..n {
            let len = read_i32(msg, pos)?;
            pos += 4;
            batch.fields.push((pos as u32, len));
            if len > 0 {
                pos += len as usize;
                if pos > msg.len() {
                    return Err("field runs past the end of its message".into());
                }
            } else if len < -1 {
                return Err(format!("negative field length {len}"));
            }
        }
        Ok(pos)
    }
}

fn header_len(msg: &[u8]) -> Result<usize, String> {
    if msg.len() < 19 || &msg[..11] != SIGNATURE {
        return Err("missing binary COPY signature".into());
    }
    let ext = read_i32(msg, 15)?;
    if ext < 0 || 19 + ext as usize > msg.len() {
        return Err("bad header extension length".into());
    }
    Ok(19 + ext as usize)
}

fn read_i16(b: &[u8], pos: usize) -> Result<i16, String> {
    b.get(pos..pos + 2).map(|s| i16::from_be_bytes([s[0], s[1]])).ok_or_else(|| "truncated row".to_string())
}

fn read_i32(b: &[u8], pos: usize) -> Result<i32, String> {
    b.get(pos..pos + 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| "truncated row".to_string())
}

/// Builds binary COPY messages; for tests and benchmarks of the parser.
pub fn encode_rows(rows: &[Vec<Option<&[u8]>>]) -> Vec<Bytes> {
    let mut out = vec![];
    for (i, row) in rows.iter().enumerate() {
        let mut m = vec![];
        if i == 0 {
            m.extend_from_slice(SIGNATURE);
            m.extend_from_slice(&[0; 8]);
        }
        m.extend_from_slice(&(row.len() as i16).to_be_bytes());
        for f in row {
            match f {
                None => m.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    m.extend_from_slice(b);
                }
            }
        }
        out.push(Bytes::from(m));
    }
    let mut trailer = vec![];
    if rows.is_empty() {
        trailer.extend_from_slice(SIGNATURE);
        trailer.extend_from_slice(&[0; 8]);
    }
    trailer.extend_from_slice(&(-1i16).to_be_bytes());
    out.push(Bytes::from(trailer));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msgs = encode_rows(&[vec![Some(b"ab"), None], vec![Some(b""), Some(b"xyz")]]);
        let mut d = Decoder::new(2);
        let b = d.decode(msgs).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.field(0, 0), Some(&b"ab"[..]));
        assert_eq!(b.field(0, 1), None);
        assert_eq!(b.field(1, 0), Some(&b""[..]));
        assert_eq!(b.field(1, 1), Some(&b"xyz"[..]));
        assert!(d.finished);
    }

    #[test]
    fn empty_result_is_one_message() {
        let msgs = encode_rows(&[]);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].len(), 21);
        let mut d = Decoder::new(3);
        assert_eq!(d.decode(msgs).unwrap().len(), 0);
        assert!(d.finished);
    }

    #[test]
    fn rejects_garbage() {
        let mut d = Decoder::new(1);
        assert!(d.decode(vec![Bytes::from_static(b"nope")]).is_err());
        let mut msgs = encode_rows(&[vec![Some(b"abc")]]);
        let first = msgs[0].slice(..msgs[0].len() - 1);
        msgs[0] = first;
        assert!(Decoder::new(1).decode(msgs).is_err());
    }
}
