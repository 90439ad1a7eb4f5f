//! `fstore metrics`: the store's Prometheus exposition, printed or served
//! over HTTP for a scrape.
//!
//! The server is deliberately tiny: one request at a time (a scrape every
//! few seconds needs no more), each read and write bounded by a timeout and
//! the request by a size, so a stuck or hostile client cannot hold it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use fstore::{Error, Result, Store};
use serde_json::json;

use crate::output::emit;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST_BYTES: usize = 8192;

pub fn metrics(store: &Store, listen: Option<&str>, json: bool) -> Result<()> {
    let Some(address) = listen else {
        let text = store.metrics()?;
        emit(json, &json!({"format": "prometheus text 0.0.4", "text": text}), || text.clone());
        return Ok(());
    };
    let listener = TcpListener::bind(address)
        .map_err(|e| Error::io(format!("cannot listen on {address}"), e))?;
    let bound = listener.local_addr().map_err(|e| Error::io("cannot read the bound address", e))?;
    if json {
        println!("{}", json!({"listening": bound.to_string(), "path": "/metrics"}));
    } else {
        println!("serving metrics on http://{bound}/metrics");
    }
    let _ = std::io::stdout().flush();
    for connection in listener.incoming() {
        match connection {
            Ok(stream) => {
                if let Err(e) = answer(store, stream) {
                    eprintln!("fstore: metrics request failed: {e}");
                }
            }
            Err(e) => eprintln!("fstore: cannot accept a connection: {e}"),
        }
    }
    Ok(())
}

/// Reads one request (up to its blank line) and answers it.
fn answer(store: &Store, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if request.len() > MAX_REQUEST_BYTES {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "request too large\n");
        }
        match stream.read(&mut chunk)? {
            0 => break,
            n => request.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let mut parts = line.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => match store.metrics() {
            Ok(text) => respond(&mut stream, "200 OK", CONTENT_TYPE, &text),
            Err(e) => respond(&mut stream, "500 Internal Server Error", "text/plain", &format!("{e}\n")),
        },
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "metrics are at /metrics\n"),
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "only GET\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
