//! Standard input and output for the MCP server, one JSON-RPC message a line,
//! with JSON-RPC's answer to a line that is not JSON: a `-32700` parse error
//! with a null id (the MCP SDK would drop the line without a word, and a
//! client waiting for its answer would hang). Lines that parse go to the
//! server unchanged; the server's output and these errors are written whole,
//! one line at a time, so they never interleave.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
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
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&line) {
                if errors.send(parse_error(&e)).await.is_err() {
                    break;
                }
                continue;
            }
            if feed.write_all(format!("{line}\n").as_bytes()).await.is_err() {
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

/// JSON-RPC's parse error, for a line that is not JSON.
fn parse_error(e: &serde_json::Error) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": format!("Parse error: not JSON ({e})") }
    })
    .to_string()
}
