//! A section written ahead of a diff's report, in the same document: what
//! `check` did before the diff (the branch, the migration). Text and Markdown
//! get it before the report; JSON gets it as a top-level `check` object. It is
//! written together with the report's first bytes, so a diff that fails before
//! writing anything leaves no output at all.

use std::io::{self, Write};

use crate::args::Format;

/// The section in each format.
#[derive(Debug, Clone, Default)]
pub struct Preamble {
    /// For the text report.
    pub text: String,
    /// For the Markdown report.
    pub markdown: String,
    /// The value of the JSON document's top-level `check` member.
    pub json: serde_json::Value,
}

/// `out`, with `preamble` put in front of (text, Markdown) or into (JSON) what the sink writes.
pub fn wrap(out: Box<dyn Write>, format: Format, preamble: Option<&Preamble>) -> Box<dyn Write> {
    let Some(p) = preamble else { return out };
    let (bytes, into_object) = match format {
        Format::Text => (p.text.clone().into_bytes(), false),
        Format::Markdown => (p.markdown.clone().into_bytes(), false),
        // Indented like the document's other top-level members; a `,` follows
        // because the document's own members come after it.
        Format::Json => {
            let value = serde_json::to_string_pretty(&p.json).unwrap_or_else(|_| "null".into());
            (format!("\n  \"check\": {},", value.replace('\n', "\n  ")).into_bytes(), true)
        }
        // A directory report gets the section as a file of its own (see `diff::sink`).
        Format::Arrow => return out,
        // A line of its own ahead of `begin`, in the stream's envelope.
        Format::Ndjson => {
            let line = serde_json::json!({"type": "check", "data": p.json});
            (format!("{line}\n").into_bytes(), false)
        }
        // The script's reader sees what was checked, as comments.
        Format::Sql => {
            let comment: String = p.text.lines().map(|l| format!("-- {l}\n").replace("-- \n", "--\n")).collect();
            (format!("{comment}\n").into_bytes(), false)
        }
    };
    Box::new(Prefixed { out, pending: Some(bytes), into_object })
}

struct Prefixed {
    out: Box<dyn Write>,
    pending: Option<Vec<u8>>,
    /// JSON: the section goes right after the document's opening `{`.
    into_object: bool,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(pending) = self.pending.take() else { return self.out.write(buf) };
        if !self.into_object {
            self.out.write_all(&pending)?;
            self.out.write_all(buf)?;
            return Ok(buf.len());
        }
        match buf.iter().position(|&b| b == b'{') {
            Some(i) => {
                self.out.write_all(&buf[..=i])?;
                self.out.write_all(&pending)?;
                self.out.write_all(&buf[i + 1..])?;
            }
            None => {
                self.pending = Some(pending);
                self.out.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn written(format: Format, pieces: &[&str]) -> String {
        let shared = Shared::default();
        let p = Preamble { text: "T\n".into(), markdown: "M\n".into(), json: serde_json::json!({"a": [1]}) };
        let mut w = wrap(Box::new(shared.clone()), format, Some(&p));
        for piece in pieces {
            w.write_all(piece.as_bytes()).unwrap();
        }
        drop(w);
        let bytes = shared.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_gets_a_check_member_first() {
        let doc = written(Format::Json, &["{\n  \"format_version\": ", "1", "\n}\n"]);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["check"]["a"][0], 1, "{doc}");
        assert_eq!(v["format_version"], 1);
        assert!(doc.starts_with("{\n  \"check\": {"), "{doc}");
    }

    #[test]
    fn text_and_markdown_get_it_in_front_and_nothing_without_a_write() {
        assert_eq!(written(Format::Text, &["report"]), "T\nreport");
        assert_eq!(written(Format::Markdown, &["# r", "!"]), "M\n# r!");
        assert_eq!(written(Format::Text, &[]), "");
        assert_eq!(
            written(Format::Ndjson, &["{\"type\":\"begin\"}\n"]),
            "{\"type\":\"check\",\"data\":{\"a\":[1]}}\n{\"type\":\"begin\"}\n"
        );
        assert_eq!(written(Format::Sql, &["BEGIN;"]), "-- T\n\nBEGIN;");
    }
}
