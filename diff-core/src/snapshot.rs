//! One side of the diff: a set of connections that all read the same
//! REPEATABLE READ, READ ONLY snapshot. The first connection exports its
//! snapshot and the others import it, so parallel table reads agree with each
//! other and with the catalog read.

use futures_util::future::try_join_all;
use tokio_postgres::Client;

use crate::conn::ConnConfig;
use crate::error::{pg_message, Error, Result, SideName};
use crate::socket::Received;

/// Session settings pinned on every connection: values read as text (dates,
/// intervals, floats inside arrays, bytea, money) must print the same on both sides.
/// `row_security = off` (as pg_dump does): a policy that would hide rows from
/// this role makes the read fail instead of silently returning fewer rows.
const SESSION_SETUP: &str =
    "SET search_path = ''; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
     SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'; \
     SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0; \
     SET default_transaction_read_only = on; SET statement_timeout = 0; SET lock_timeout = '10s'; \
     SET row_security = off";

const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// Connections to one database sharing one snapshot.
pub struct Side {
    /// Parent or child.
    pub name: SideName,
    /// `user@host:port/dbname`.
    pub endpoint: String,
    /// `server_version_num`, e.g. 150018.
    pub server_version: i32,
    /// The exported snapshot id (when more than one connection was asked for).
    pub snapshot_id: Option<String>,
    /// `pg_control_system().system_identifier`, when readable: equal on both
    /// sides for databases of one cluster (or its physical copies).
    pub system_identifier: Option<i64>,
    /// `pg_postmaster_start_time()`: with the system identifier, names one running instance.
    pub postmaster_start: Option<String>,
    /// Transaction id epoch of the snapshot (0: the instance never wrapped around).
    pub xid_epoch: Option<i64>,
    /// Bytes received from the server by all of this side's connections.
    pub received: Received,
    clients: Vec<Client>,
    drivers: Vec<tokio::task::JoinHandle<()>>,
    config: ConnConfig,
}

impl Side {
    /// Opens `n` (≥ 1) connections and puts them all in one snapshot.
    pub async fn open(cfg: &ConnConfig, n: usize) -> Result<Side> {
        let n = n.max(1);
        // One connection first: a wrong password or database fails once, not `n` times in the
        // server's log (where failed logins may count towards a lockout).
        let received = Received::default();
        let first = cfg.connect_counted(&received).await?;
        let rest = try_join_all((1..n).map(|_| cfg.connect_counted(&received))).await?;
        let (clients, drivers) = std::iter::once(first).chain(rest).unzip();
        let mut side = Side {
            name: cfg.side(),
            endpoint: cfg.endpoint(),
            server_version: 0,
            snapshot_id: None,
            system_identifier: None,
            postmaster_start: None,
            xid_epoch: None,
            received,
            clients,
            drivers,
            config: cfg.clone(),
        };
        try_join_all(side.clients.iter().map(|c| c.batch_execute(SESSION_SETUP)))
            .await
            .map_err(|e| side.query_error("setting up the session", &e))?;
        let first = &side.clients[0];
        // Outside the transaction: a permission error here must not abort it.
        side.system_identifier =
            first.query_one("SELECT system_identifier FROM pg_control_system()", &[]).await.ok().map(|r| r.get(0));
        first.batch_execute(BEGIN).await.map_err(|e| side.query_error("starting a read-only transaction", &e))?;
        let row = first
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| side.query_error("reading the server version", &e))?;
        side.server_version = row.get(0);
        let row = first
            .query_one(
                "SELECT pg_postmaster_start_time()::text, (pg_snapshot_xmax(pg_current_snapshot())::text::bigint >> 32)",
                &[],
            )
            .await
            .map_err(|e| side.query_error("reading the instance", &e))?;
        side.postmaster_start = row.get(0);
        side.xid_epoch = row.get(1);
        if n > 1 {
            let row = first
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .map_err(|e| side.query_error("exporting the snapshot", &e))?;
            let id: String = row.get(0);
            let import =
                format!("{BEGIN}; SET TRANSACTION SNAPSHOT {}", postgres_protocol::escape::escape_literal(&id));
            try_join_all(side.clients[1..].iter().map(|c| c.batch_execute(&import)))
                .await
                .map_err(|e| side.query_error("importing the snapshot", &e))?;
            side.snapshot_id = Some(id);
        }
        Ok(side)
    }

    /// Ends the read-only transactions and closes every connection politely
    /// (a Terminate message, then the socket), so the server logs no
    /// "unexpected EOF … with an open transaction". Errors are ignored: the
    /// diff's outcome is already decided.
    pub async fn close(self) {
        let Side { clients, drivers, .. } = self;
        let ends = clients.iter().map(|c| async move { drop(c.batch_execute("COMMIT").await) });
        // A connection still draining an abandoned COPY (an early stop) is not waited for long.
        let limit = std::time::Duration::from_secs(2);
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(ends)).await;
        drop(clients);
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(drivers)).await;
    }

    /// Cancels whatever the connections are running (a COPY the consumer no
    /// longer reads), so that closing them does not wait for it or cut it off.
    pub async fn cancel(&self) {
        let cancels = self.clients.iter().map(|c| async move { self.config.cancel(&c.cancel_token()).await });
        let limit = std::time::Duration::from_secs(2);
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(cancels)).await;
    }

    /// Connection `i` (modulo the number open).
    pub fn client(&self, i: usize) -> &Client {
        &self.clients[i % self.clients.len()]
    }

    /// Whether both sides are the same running instance, never wrapped around:
    /// then (ctid, xmin) names a row version on both (see [`crate::identity`]).
    pub fn same_instance(&self, other: &Side) -> bool {
        self.system_identifier.is_some()
            && self.system_identifier == other.system_identifier
            && self.postmaster_start.is_some()
            && self.postmaster_start == other.postmaster_start
            && self.xid_epoch == Some(0)
            && other.xid_epoch == Some(0)
    }

    /// Number of connections.
    pub fn connections(&self) -> usize {
        self.clients.len()
    }

    /// A query error on this side, one line.
    pub fn query_error(&self, context: &str, e: &tokio_postgres::Error) -> Error {
        let mut message = pg_message(e);
        if e.as_db_error().is_some_and(|d| d.message().contains("row-level security")) {
            message.push_str(
                "; this role is subject to row-level security and would see only some rows: \
                 connect as the table's owner, a superuser or a role with BYPASSRLS",
            );
        }
        Error::Query { side: self.name, endpoint: self.endpoint.clone(), context: context.to_string(), message }
    }
}
