//! Standard input and output for the MCP server, one JSON-RPC message a line,
//! with JSON-RPC's answer to a line that is not JSON: a `-32700` parse error
//! with a null id (the MCP SDK would drop the line without a word, and a
//! client waiting for its answer would hang). Lines that parse go to the
//! server unchanged; the server's output and these errors are written whole,
//! one line at a time, so they never interleave. A line that is not UTF-8 is
//! not JSON either; a line over the SDK's limit (which it would drop without
//! a word) gets an invalid-request error with the request's id when its
//! first bytes name one. Input is read in bounded pieces: a peer that never
//! sends a newline cannot grow memory past the limit.

use rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes buffered between the server and the real standard streams.
const BUFFER: usize = 1 << 20;

/// The server's side of standard input and output, and the task that writes standard output
/// (await it after the server stops, so its last answers are flushed).
pub fn stdio() -> ((DuplexStream, DuplexStream), JoinHandle<()>) {
    let (server_in, mut feed) = tokio::io::duplex(BUFFER);
    let (server_out, from_server) = tokio::io::duplex(BUFFER);
    let (errors, mut error_lines) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut input = BufReader::new(tokio::io::stdin());
        while let Some(line) = next_line(&mut input).await {
            let answer = match line {
                Line::Whole(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Line::Whole(line) => match check(&line) {
                    Ok(()) => {
                        if feed.write_all(&line).await.is_err() || feed.write_all(b"\n").await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Err(answer) => answer,
                },
                Line::TooLong(start) => too_long(&start),
            };
            if errors.send(answer).await.is_err() {
                break;
            }
        }
        // End of input: the server sees it and stops.
        let _ = feed.shutdown().await;
    });
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        let mut answers = BufReader::new(from_server).lines();
        loop {
            let line = tokio::select! {
                a = answers.next_line() => match a { Ok(Some(l)) => with_id(l), _ => break },
                Some(e) = error_lines.recv() => e,
            };
            if out.write_all(format!("{line}\n").as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    ((server_in, server_out), writer)
}

/// The longest line passed on: the SDK drops longer ones.
const MAX_LINE: usize = DEFAULT_MAX_LINE_LENGTH - 1;

/// One line of input, without its newline.
enum Line {
    Whole(Vec<u8>),
    /// Longer than [`MAX_LINE`]: its first bytes (the rest was read and dropped).
    TooLong(Vec<u8>),
}

/// The next line, or None at the end of input (or when it cannot be read).
async fn next_line<R: AsyncBufRead + Unpin>(input: &mut R) -> Option<Line> {
    let mut line = Vec::new();
    let n = (&mut *input).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line).await.ok()?;
    if n == 0 {
        return None;
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Some(Line::Whole(line));
    }
    if line.len() <= MAX_LINE {
        // The last line, without a newline.
        return Some(Line::Whole(line));
    }
    line.truncate(4096);
    let mut rest = Vec::new();
    loop {
        rest.clear();
        let n = (&mut *input).take(1 << 16).read_until(b'\n', &mut rest).await.ok()?;
        if n == 0 || rest.last() == Some(&b'\n') {
            return Some(Line::TooLong(line));
        }
    }
}

/// Ok if the line is JSON (UTF-8 included); else the parse error to answer.
fn check(line: &[u8]) -> Result<(), String> {
    // Read whole, as the SDK will: ignoring a value would let through what it cannot read (bytes
    // that are not UTF-8, a lone surrogate escape, nesting past its depth limit) and then drops.
    let text = std::str::from_utf8(line).map_err(|e| parse_error(&format!("not UTF-8: {e}")))?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(message) => bad_tool_call(&message).map_or(Ok(()), Err),
        Err(e) => Err(parse_error(&format!("not JSON ({e})"))),
    }
}

/// A `tools/call` without a tool's name or with arguments that are not an object: JSON-RPC's
/// invalid-params error (the SDK answers "method not found").
fn bad_tool_call(message: &serde_json::Value) -> Option<String> {
    if message.get("method").and_then(|m| m.as_str()) != Some("tools/call") || message.get("id").is_none() {
        return None;
    }
    let params = message.get("params");
    let why = match params {
        Some(p) if !p.get("name").is_some_and(|n| n.is_string()) => "params.name must be the tool's name",
        Some(p) if p.get("arguments").is_some_and(|a| !a.is_object() && !a.is_null()) => {
            "params.arguments must be an object"
        }
        Some(_) => return None,
        None => "params with the tool's name are required",
    };
    let answer = serde_json::json!({
        "jsonrpc": "2.0",
        "id": message["id"],
        "error": { "code": -32602, "message": format!("Invalid params: {why}") }
    });
    Some(answer.to_string())
}

/// JSON-RPC's invalid-request error for a message over the limit, with its id when it shows.
fn too_long(start: &[u8]) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": top_level_id(start),
        "error": {
            "code": -32600,
            "message": format!("Invalid Request: the message is over the server's limit of {} MiB", (MAX_LINE + 1) >> 20)
        }
    })
    .to_string()
}

/// The value of the top-level `"id"` member in the first bytes of a JSON object, if it is
/// there whole (a number or a string); else null.
fn top_level_id(start: &[u8]) -> serde_json::Value {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < start.len() {
        match start[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let Some(end) = string_end(start, i) else { break };
                let key = &start[i..=end];
                i = end + 1;
                if depth == 1 && key == b"\"id\"" {
                    let after = start[i..].iter().position(|b| !b.is_ascii_whitespace()).map(|p| i + p);
                    if let Some(colon) = after.filter(|&p| start[p] == b':') {
                        let rest = &start[colon + 1..];
                        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
                        let value = values.next();
                        // A number that ends where the bytes end may have been cut short.
                        if let Some(Ok(v)) = value.filter(|_| values.byte_offset() < rest.len()) {
                            if v.is_number() || v.is_string() {
                                return v;
                            }
                        }
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    serde_json::Value::Null
}

/// Where the JSON string that opens at `open` closes.
fn string_end(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// An error response must have an id, null when the request's is unknown; the SDK leaves it out.
fn with_id(line: String) -> String {
    if !line.contains("\"error\"") {
        return line;
    }
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(mut m)) if m.contains_key("error") && !m.contains_key("id") => {
            m.insert("id".into(), serde_json::Value::Null);
            serde_json::Value::Object(m).to_string()
        }
        _ => line,
    }
}

/// JSON-RPC's parse error, for a line that is not JSON (`why`).
fn parse_error(why: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": format!("Parse error: {why}") }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_a_message_too_long_to_read_is_found_at_the_top_level_only() {
        let id = |s: &str| top_level_id(s.as_bytes());
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"sql":"xxxx"#), serde_json::json!(7));
        assert_eq!(id(r#"{"params":{"id":1,"x":"a\"b"},"id" : "r-2","#), serde_json::json!("r-2"));
        assert_eq!(id(r#"{"method":"m","params":{"id":3,"sql":"xxxxxxx"#), serde_json::Value::Null);
        assert_eq!(id(r#"{"id":12"#), serde_json::Value::Null, "a number cut short is not the id");
    }

    #[tokio::test]
    async fn lines_are_bounded_and_need_not_be_utf8() {
        let mut long = vec![b'{'; MAX_LINE + 10];
        long.extend_from_slice(b"\n{\"id\":1}\n\xff\xfe\n");
        let mut input = &long[..];
        assert!(matches!(next_line(&mut input).await, Some(Line::TooLong(s)) if s.len() == 4096));
        assert!(matches!(next_line(&mut input).await, Some(Line::Whole(l)) if l == b"{\"id\":1}"));
        let Some(Line::Whole(bad)) = next_line(&mut input).await else { panic!("the invalid line") };
        assert!(check(&bad).unwrap_err().contains("-32700"));
        assert!(check(b"{\"x\": \"\xff\"}").unwrap_err().contains("not UTF-8"));
        assert!(check(br#"{"id":1,"method":"a\ud800"}"#).unwrap_err().contains("-32700"));
        let call =
            |params: &str| check(format!(r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call"{params}}}"#).as_bytes());
        assert!(call(r#","params":{"name":"diff","arguments":[]}"#).unwrap_err().contains("-32602"));
        assert!(call("").unwrap_err().contains(r#""id":4"#));
        assert!(call(r#","params":{"name":"diff","arguments":{}}"#).is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check(deep.as_bytes()).unwrap_err().contains("-32700"));
        assert!(next_line(&mut input).await.is_none());
    }
}
