//! Connection strings the way libpq reads them: `postgresql://` URLs and
//! `key=value` strings, `PG*` environment variables, `~/.pgpass`, and `sslmode`
//! from `disable` to `verify-full`. tokio-postgres knows neither the
//! environment, the password file nor certificate verification modes, so the
//! parameters are collected here and turned into its `Config` at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::{pg_message, Error, Result, SideName};

/// How TLS is negotiated and what is verified, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, no verification (libpq's default).
    Prefer,
    /// TLS or fail; the certificate is not verified.
    Require,
    /// TLS, certificate chain verified against the root certificates.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

/// A parsed connection target for one side. Holds the password, but neither
/// `Debug` nor [`ConnConfig::endpoint`] ever shows it.
#[derive(Clone)]
pub struct ConnConfig {
    params: BTreeMap<String, String>,
    side: SideName,
    /// Built once per side: loading root certificates costs tens of milliseconds.
    tls: Arc<OnceLock<postgres_native_tls::MakeTlsConnector>>,
}

impl std::fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnConfig({})", self.endpoint())
    }
}

const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "passfile",
    "application_name",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "keepalives",
    "channel_binding",
];

impl ConnConfig {
    /// Parses a libpq URL (`postgresql://user@host:port/db?sslmode=require`) or
    /// `key=value` string, then fills what is missing from `PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT` and the password file.
    ///
    /// ```
    /// use diff_core::{ConnConfig, SideName};
    /// let c = ConnConfig::parse(SideName::Parent, "postgresql://app:secret@db.example.com:6432/shop").unwrap();
    /// assert_eq!(c.endpoint(), "app@db.example.com:6432/shop"); // never the password
    /// let e = ConnConfig::parse(SideName::Child, "postgresq://app@db/shop").unwrap_err();
    /// assert!(e.to_string().contains("unknown scheme"));
    /// ```
    pub fn parse(side: SideName, s: &str) -> Result<ConnConfig> {
        let s = s.trim();
        // A malformed string may be malformed in its password: never echo that part.
        let bad = |message: String| Error::ConnString { side, message: scrub_secrets(&message, s) };
        let mut params = if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            parse_url(s).map_err(bad)?
        } else if s.contains('=') {
            parse_keywords(s).map_err(bad)?
        } else if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(format!("unknown scheme \"{scheme}://\": expected postgresql:// or postgres://")));
        } else if !s.is_empty() && !s.contains(char::is_whitespace) {
            // A bare word is a database name, like `psql shop`.
            BTreeMap::from([("dbname".to_string(), s.to_string())])
        } else {
            return Err(bad("expected a postgresql:// URL or key=value pairs".into()));
        };
        for key in params.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(bad(format!("unknown parameter \"{key}\"")));
            }
        }
        let mut cfg = ConnConfig { params: std::mem::take(&mut params), side, tls: Arc::default() };
        cfg.fill_from_env(|k| std::env::var(k).ok());
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Parses `key=value` pairs as given, filling nothing from the environment
    /// or the password file: for a server this program started itself, which
    /// `PGHOSTADDR`, `PGSSLMODE` and the like must not redirect.
    pub fn parse_exact(side: SideName, s: &str) -> Result<ConnConfig> {
        let bad = |message: String| Error::ConnString { side, message };
        let params = parse_keywords(s.trim()).map_err(bad)?;
        for key in ["host", "port", "user", "dbname"] {
            if !params.contains_key(key) {
                return Err(bad(format!("missing parameter \"{key}\"")));
            }
        }
        let cfg = ConnConfig { params, side, tls: Arc::default() };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    fn fill_from_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        for (key, var) in [
            ("host", "PGHOST"),
            ("hostaddr", "PGHOSTADDR"),
            ("port", "PGPORT"),
            ("user", "PGUSER"),
            ("password", "PGPASSWORD"),
            ("dbname", "PGDATABASE"),
            ("sslmode", "PGSSLMODE"),
            ("sslrootcert", "PGSSLROOTCERT"),
            ("passfile", "PGPASSFILE"),
            ("application_name", "PGAPPNAME"),
            ("connect_timeout", "PGCONNECT_TIMEOUT"),
        ] {
            if !self.params.contains_key(key) {
                if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                    self.params.insert(key.into(), v);
                }
            }
        }
        if !self.params.contains_key("host") && !self.params.contains_key("hostaddr") {
            let sock =
                ["/var/run/postgresql", "/tmp"].into_iter().find(|d| Path::new(d).is_dir()).unwrap_or("localhost");
            self.params.insert("host".into(), sock.into());
        }
        if !self.params.contains_key("user") {
            let user = env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into());
            self.params.insert("user".into(), user);
        }
        if !self.params.contains_key("dbname") {
            let user = self.params["user"].clone();
            self.params.insert("dbname".into(), user);
        }
        if !self.params.contains_key("password") {
            if let Some(p) = self.password_from_file(&env) {
                self.params.insert("password".into(), p);
            }
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        self.ssl_mode()?;
        self.port()?;
        if let Some(t) = self.params.get("connect_timeout") {
            t.parse::<u64>().map_err(|_| format!("connect_timeout \"{t}\" is not a number of seconds"))?;
        }
        Ok(())
    }

    /// The side this configuration is for.
    pub fn side(&self) -> SideName {
        self.side
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.params["dbname"]
    }

    /// `user@host:port/dbname`, for messages and reports. Never contains the password.
    pub fn endpoint(&self) -> String {
        let host = self.params.get("host").or(self.params.get("hostaddr")).map(String::as_str).unwrap_or("");
        let port = self.port().unwrap_or(5432);
        format!("{}@{}:{}/{}", self.params["user"], host, port, self.params["dbname"])
    }

    /// A connection parameter as given or filled from the environment
    /// (`host`, `port`, `user`, `password`, `sslmode`…). Callers that pass
    /// it on (an environment for a migration tool) must never print `password`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// The same server, role and settings, another database on it (a branch
    /// made with `CREATE DATABASE … TEMPLATE`), for `side`.
    pub fn with_dbname(&self, side: SideName, dbname: &str) -> ConnConfig {
        let mut c = self.clone();
        c.params.insert("dbname".into(), dbname.into());
        c.side = side;
        c
    }

    /// The same server and database as another role (`password` replaces or removes the password).
    pub fn with_role(&self, user: &str, password: Option<&str>) -> ConnConfig {
        let mut c = self.clone();
        c.params.insert("user".into(), user.into());
        match password {
            Some(p) => c.params.insert("password".into(), p.into()),
            None => c.params.remove("password"),
        };
        c
    }

    /// Whether the host is a unix-socket directory.
    pub fn is_socket(&self) -> bool {
        self.params.get("host").is_some_and(|h| h.starts_with('/')) && !self.params.contains_key("hostaddr")
    }

    fn port(&self) -> std::result::Result<u16, String> {
        match self.params.get("port") {
            None => Ok(5432),
            Some(p) => p.parse::<u16>().map_err(|_| format!("port \"{p}\" is not a number from 1 to 65535")),
        }
    }

    /// The TLS mode in force (default `prefer`, as libpq).
    pub fn ssl_mode(&self) -> std::result::Result<SslMode, String> {
        Ok(match self.params.get("sslmode").map(String::as_str).unwrap_or("prefer") {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode \"{other}\" is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            }
        })
    }

    fn password_from_file(&self, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
        let path = match self.params.get("passfile") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env("HOME")?).join(".pgpass"),
        };
        let text = std::fs::read_to_string(path).ok()?;
        let host = match self.params.get("host") {
            // libpq matches the default socket directory as "localhost".
            Some(h) if h.starts_with('/') => "localhost".to_string(),
            Some(h) => h.clone(),
            None => self.params.get("hostaddr").cloned().unwrap_or_default(),
        };
        let port = self.port().unwrap_or(5432).to_string();
        let want = [host.as_str(), port.as_str(), self.dbname(), self.params["user"].as_str()];
        text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let fields = split_pgpass(line);
            if fields.len() != 5 {
                return None;
            }
            let ok = fields[..4].iter().zip(want).all(|(f, w)| f == "*" || f == w);
            ok.then(|| fields[4].clone())
        })
    }

    /// Builds the tokio-postgres configuration.
    pub(crate) fn to_pg(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if let Some(h) = self.params.get("host") {
            for part in h.split(',') {
                c.host(part);
            }
        }
        if let Some(a) = self.params.get("hostaddr") {
            for part in a.split(',') {
                if let Ok(ip) = part.parse() {
                    c.hostaddr(ip);
                }
            }
        }
        c.port(self.port().unwrap_or(5432));
        c.user(&self.params["user"]);
        c.dbname(self.dbname());
        if let Some(p) = self.params.get("password") {
            c.password(p);
        }
        if let Some(o) = self.params.get("options") {
            c.options(o);
        }
        c.application_name(self.params.get("application_name").map(String::as_str).unwrap_or("pgbranchdiff"));
        let timeout = self.params.get("connect_timeout").and_then(|t| t.parse().ok()).unwrap_or(30);
        if timeout > 0 {
            c.connect_timeout(Duration::from_secs(timeout));
        }
        c.ssl_mode(match self.ssl_mode().unwrap_or(SslMode::Prefer) {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }

    fn tls(&self) -> Result<postgres_native_tls::MakeTlsConnector> {
        let mode = self.ssl_mode().unwrap_or(SslMode::Prefer);
        let mut b = native_tls::TlsConnector::builder();
        let root = self.params.get("sslrootcert").cloned().or_else(|| {
            let p = PathBuf::from(std::env::var("HOME").ok()?).join(".postgresql/root.crt");
            p.exists().then(|| p.to_string_lossy().into_owned())
        });
        // libpq: with a root certificate at hand, `require` verifies the chain too.
        let verify_chain = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (mode == SslMode::Require && self.params.contains_key("sslrootcert"));
        if let Some(root) = root.filter(|r| r != "system") {
            let pem = std::fs::read(&root).map_err(|e| Error::ConnString {
                side: self.side,
                message: format!("cannot read sslrootcert {root}: {e}"),
            })?;
            let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| Error::ConnString {
                side: self.side,
                message: format!("sslrootcert {root} is not a PEM certificate: {e}"),
            })?;
            b.add_root_certificate(cert);
        }
        b.danger_accept_invalid_certs(!verify_chain);
        b.danger_accept_invalid_hostnames(mode != SslMode::VerifyFull);
        let connector =
            b.build().map_err(|e| Error::ConnString { side: self.side, message: format!("TLS setup failed: {e}") })?;
        Ok(postgres_native_tls::MakeTlsConnector::new(connector))
    }

    /// Opens one connection; its driver task runs on the current tokio runtime
    /// and ends once the client is dropped (after telling the server goodbye).
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
        let fail = |e: tokio_postgres::Error| Error::Connect {
            side: self.side,
            endpoint: self.endpoint(),
            message: self.redact(&with_hint(pg_message(&e))),
        };
        // Like libpq, no TLS over a unix socket.
        if self.is_socket() || self.ssl_mode() == Ok(SslMode::Disable) {
            let mut cfg = self.to_pg();
            cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.map_err(fail)?;
            return Ok((client, tokio::spawn(async move { drop(connection.await) })));
        }
        let tls = self.tls_connector()?;
        let (client, connection) = self.to_pg().connect(tls).await.map_err(fail)?;
        // Errors surface on the client's next call.
        Ok((client, tokio::spawn(async move { drop(connection.await) })))
    }

    /// Opens one connection like [`ConnConfig::connect`], over a socket that
    /// counts the bytes received into `received` (what the diff cost on the network).
    pub async fn connect_counted(
        &self,
        received: &crate::socket::Received,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
        let fail = |message: String| Error::Connect { side: self.side, endpoint: self.endpoint(), message };
        let mut cfg = self.to_pg();
        let opened = crate::socket::open(&cfg, received)
            .await
            .map_err(|e| fail(self.redact(&format!("error connecting to server: {e}{}", self.unreachable_hint(&e)))))?;
        let pg_fail = |e: tokio_postgres::Error| fail(self.redact(&with_hint(pg_message(&e))));
        // Like libpq, no TLS over a unix socket.
        if self.is_socket() || self.ssl_mode() == Ok(SslMode::Disable) {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = cfg.connect_raw(opened.socket, tokio_postgres::NoTls).await.map_err(pg_fail)?;
            return Ok((client, tokio::spawn(async move { drop(connection.await) })));
        }
        let mut make = self.tls_connector()?;
        let tls = tokio_postgres::tls::MakeTlsConnect::<crate::socket::CountedSocket>::make_tls_connect(
            &mut make,
            &opened.host,
        )
        .map_err(|e| Error::ConnString { side: self.side, message: format!("TLS setup failed: {e}") })?;
        let (client, connection) = cfg.connect_raw(opened.socket, tls).await.map_err(pg_fail)?;
        Ok((client, tokio::spawn(async move { drop(connection.await) })))
    }

    /// Asks the server to cancel what a connection of this configuration is
    /// running (connections opened over counted sockets know no address to
    /// send the request to by themselves).
    pub(crate) async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        if let Ok(opened) = crate::socket::open(&self.to_pg(), &Default::default()).await {
            let _ = token.cancel_query_raw(opened.socket, tokio_postgres::NoTls).await;
        }
    }

    /// The TLS connector, built once.
    fn tls_connector(&self) -> Result<postgres_native_tls::MakeTlsConnector> {
        Ok(match self.tls.get() {
            Some(t) => t.clone(),
            None => {
                let t = self.tls()?;
                self.tls.get_or_init(|| t).clone()
            }
        })
    }

    /// What to check when no server answered: like psql, whether one runs there.
    fn unreachable_hint(&self, e: &std::io::Error) -> &'static str {
        match e.kind() {
            std::io::ErrorKind::NotFound if self.is_socket() => {
                " (no server socket there: is the server running, on that port and socket directory?)"
            }
            std::io::ErrorKind::ConnectionRefused => {
                " (is the server running and accepting TCP connections on that port?)"
            }
            _ => "",
        }
    }

    /// Removes the password from a message, in case a server or library echoes it.
    pub(crate) fn redact(&self, msg: &str) -> String {
        match self.params.get("password") {
            Some(p) if !p.is_empty() => msg.replace(p.as_str(), "********"),
            _ => msg.to_string(),
        }
    }
}

/// A connection error's message, with where a missing password may come from.
fn with_hint(message: String) -> String {
    if message.contains("password missing") {
        format!("{message} (give it with password=, PGPASSWORD or a ~/.pgpass entry)")
    } else {
        message
    }
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// `message` with every word of the connection string's password region
/// (URL user info after `:`, a `password=` value up to the next `key=`)
/// replaced by `***`, so that an error about a malformed string never shows
/// what may be a password.
fn scrub_secrets(message: &str, input: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    if let Some(rest) = input.split_once("://").map(|x| x.1) {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            secrets.extend(userinfo.split_once(':').map(|x| x.1));
        }
    }
    for (i, _) in input.match_indices("password") {
        let after = input[i + "password".len()..].trim_start();
        let Some(value) = after.strip_prefix('=') else { continue };
        // The value runs to the next `key=` (or `&` in a URL query), whatever its quoting.
        secrets.extend(value.split_whitespace().take_while(|w| !w.contains('=')));
        secrets.extend(value.split('&').next().and_then(|v| v.split_whitespace().next()));
    }
    let mut out = message.to_string();
    for secret in secrets.into_iter().filter(|w| !w.is_empty()) {
        for word in [secret, secret.trim_matches(['\'', '"'])] {
            if !word.is_empty() {
                out = out.replace(word, "***");
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("bad percent escape in \"{s}\""))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent escape in \"{s}\""))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("\"{s}\" is not UTF-8 after percent-decoding"))
}

/// `postgresql://[user[:password]@][host][:port][,host[:port]…][/dbname][?k=v&…]`
fn parse_url(s: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let rest = s.split_once("://").map(|x| x.1).unwrap_or(s);
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut p = BTreeMap::new();
    let hostpart = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (u, pw) = match userinfo.split_once(':') {
                Some((u, pw)) => (u, Some(pw)),
                None => (userinfo, None),
            };
            if !u.is_empty() {
                p.insert("user".into(), percent_decode(u)?);
            }
            if let Some(pw) = pw {
                p.insert("password".into(), percent_decode(pw)?);
            }
            hosts
        }
        None => authority,
    };
    let (mut hosts, mut ports) = (vec![], vec![]);
    for hp in hostpart.split(',').filter(|x| !x.is_empty()) {
        let (h, port) = if let Some(rest) = hp.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or("unterminated [ in host")?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hp.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(format!("invalid port \"{port}\" in \"{hp}\" (IPv6 addresses go in brackets)"));
                }
                Some((h, port)) => (h.to_string(), Some(port)),
                None => (hp.to_string(), None),
            }
        };
        if !h.is_empty() {
            hosts.push(percent_decode(&h)?);
        }
        if let Some(port) = port.filter(|x| !x.is_empty()) {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("invalid port \"{port}\" in \"{hp}\": expected a number from 1 to 65535"));
            }
            ports.push(port.to_string());
        }
    }
    if !hosts.is_empty() {
        p.insert("host".into(), hosts.join(","));
    }
    if let Some(port) = ports.first() {
        p.insert("port".into(), port.clone());
    }
    if let Some(db) = path.filter(|d| !d.is_empty()) {
        p.insert("dbname".into(), percent_decode(db)?);
    }
    for kv in query.unwrap_or("").split('&').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("query parameter \"{kv}\" has no value"))?;
        let k = percent_decode(k)?;
        let k = if k == "ssl" && v == "true" { "sslmode".to_string() } else { k };
        let v = if k == "sslmode" && v == "true" { "require".to_string() } else { percent_decode(v)? };
        p.insert(k, v);
    }
    Ok(p)
}

/// `host=a port=5432 dbname='my db'` with libpq's quoting rules.
fn parse_keywords(s: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut p = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(p);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after \"{key}\""));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value for \"{key}\"")),
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        p.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_strings_never_echo_the_password() {
        for (input, secret) in [
            ("postgresql://pwuser:hunter2%ZZSECRET@/a?host=/tmp", "SECRET"),
            ("postgresql://u@/a?host=/tmp&password=hunter2%ZZSECRET", "SECRET"),
            ("postgresql://pwuser:hunter2%C3SECRET@/a?host=/tmp", "SECRET"),
            ("host=/tmp user=pwuser password=hunter2 SECRETPART dbname=a", "SECRET"),
            ("host=/tmp password='hunter2 SECRET dbname=a", "SECRET"),
        ] {
            let e = ConnConfig::parse(SideName::Parent, input).unwrap_err().to_string();
            assert!(!e.contains(secret) && !e.contains("hunter2"), "{input}: {e}");
        }
        // Errors about other parts still name them.
        let e = ConnConfig::parse(SideName::Parent, "host=/tmp port=99999 password=x").unwrap_err().to_string();
        assert!(e.contains("99999"), "{e}");
    }

    fn parse_with(s: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
        let params = if s.contains("://") { parse_url(s).unwrap() } else { parse_keywords(s).unwrap() };
        let mut c = ConnConfig { params, side: SideName::Parent, tls: Arc::default() };
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.fill_from_env(|k| env.get(k).cloned());
        c.params
    }

    #[test]
    fn url_with_everything() {
        let p = parse_with("postgresql://app:s%40cret@db.example.com:6432/shop?sslmode=verify-full", &[]);
        assert_eq!(p["user"], "app");
        assert_eq!(p["password"], "s@cret");
        assert_eq!(p["host"], "db.example.com");
        assert_eq!(p["port"], "6432");
        assert_eq!(p["dbname"], "shop");
        assert_eq!(p["sslmode"], "verify-full");
    }

    #[test]
    fn url_socket_and_ipv6() {
        let p = parse_with("postgresql://%2Ftmp%2Fsock/db", &[]);
        assert_eq!(p["host"], "/tmp/sock");
        let p = parse_with("postgres://u@[::1]:5433/db", &[]);
        assert_eq!((p["host"].as_str(), p["port"].as_str()), ("::1", "5433"));
    }

    #[test]
    fn keywords_with_quotes() {
        let p = parse_with(r"host=h dbname='my db' password='it\'s' user = bob", &[]);
        assert_eq!(p["dbname"], "my db");
        assert_eq!(p["password"], "it's");
        assert_eq!(p["user"], "bob");
    }

    #[test]
    fn environment_fills_gaps_only() {
        let p = parse_with(
            "dbname=shop",
            &[("PGHOST", "envhost"), ("PGDATABASE", "other"), ("PGUSER", "u"), ("PGPORT", "7")],
        );
        assert_eq!(
            (p["host"].as_str(), p["dbname"].as_str(), p["user"].as_str(), p["port"].as_str()),
            ("envhost", "shop", "u", "7")
        );
    }

    #[test]
    fn pgpass_lookup() {
        let dir = std::env::temp_dir().join(format!("pgpass-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\ndb.example.com:5432:shop:app:pa\\:ss\n*:*:*:app:fallback\n",
        )
        .unwrap();
        let p = parse_with("postgresql://app@db.example.com/shop", &[("PGPASSFILE", file.to_str().unwrap())]);
        assert_eq!(p["password"], "pa:ss");
        let p = parse_with("postgresql://app@elsewhere/shop", &[("PGPASSFILE", file.to_str().unwrap())]);
        assert_eq!(p["password"], "fallback");
    }

    #[test]
    fn endpoint_hides_password() {
        let c = ConnConfig {
            params: parse_url("postgresql://app:hunter2@h:1/d").unwrap(),
            side: SideName::Child,
            tls: Arc::default(),
        };
        assert_eq!(c.endpoint(), "app@h:1/d");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.redact("bad hunter2"), "bad ********");
    }
}
