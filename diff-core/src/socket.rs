//! Sockets to a server that count the bytes they receive, so a report can say
//! what a diff cost on the network (TLS included: the bytes are counted below
//! it). tokio-postgres connects through [`tokio_postgres::Config::connect_raw`]
//! over these; hosts, ports and `hostaddr` are tried in order like libpq.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;

/// Bytes received from one side's server, shared by all its connections.
#[derive(Debug, Clone, Default)]
pub struct Received(Arc<AtomicU64>);

impl Received {
    /// Bytes received so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

enum Inner {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A TCP or unix-domain socket that adds what it reads to a [`Received`].
pub struct CountedSocket {
    inner: Inner,
    received: Received,
}

impl AsyncRead for CountedSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Unix(s) => Pin::new(s).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = polled {
            this.received.add(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for CountedSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One address to try: the host name TLS verifies (none for a unix socket),
/// and the socket.
pub(crate) struct Opened {
    pub(crate) host: String,
    pub(crate) socket: CountedSocket,
}

/// Opens a socket to the first reachable host of `cfg` (libpq's order: each
/// `host` with its `port` and `hostaddr`), counting into `received`.
pub(crate) async fn open(cfg: &tokio_postgres::Config, received: &Received) -> io::Result<Opened> {
    let ports = cfg.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let (hosts, addrs) = (cfg.get_hosts(), cfg.get_hostaddrs());
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no host to connect to");
    for i in 0..hosts.len().max(addrs.len()) {
        let attempt = async {
            let inner = match (hosts.get(i), addrs.get(i)) {
                (Some(Host::Unix(dir)), _) => {
                    Inner::Unix(UnixStream::connect(dir.join(format!(".s.PGSQL.{}", port(i)))).await?)
                }
                (_, Some(ip)) => Inner::Tcp(TcpStream::connect((*ip, port(i))).await?),
                (Some(Host::Tcp(name)), None) => Inner::Tcp(TcpStream::connect((name.as_str(), port(i))).await?),
                (None, None) => return Err(io::Error::new(io::ErrorKind::NotFound, "no host")),
            };
            if let Inner::Tcp(s) = &inner {
                s.set_nodelay(true)?;
            }
            Ok::<_, io::Error>(inner)
        };
        let inner = match cfg.get_connect_timeout() {
            Some(t) => tokio::time::timeout(*t, attempt)
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timeout expired"))),
            None => attempt.await,
        };
        match inner {
            Ok(inner) => {
                let host = match (hosts.get(i), addrs.get(i)) {
                    (Some(Host::Tcp(name)), _) => name.clone(),
                    (_, Some(ip)) => ip.to_string(),
                    _ => String::new(),
                };
                return Ok(Opened { host, socket: CountedSocket { inner, received: received.clone() } });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
