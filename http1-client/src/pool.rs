//! Idle connections by backend authority.

use std::sync::{Arc, Mutex, Weak};

use http::uri::Authority;

use crate::conn::Conn;

/// Idle connections kept per backend authority; more are closed when returned.
const MAX_IDLE_PER_AUTHORITY: usize = 256;

/// A gateway calls few distinct backends per worker: a short list scanned
/// by equality beats hashing.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<(Authority, Vec<Conn>)>>,
}

impl Pool {
    pub fn checkout(&self, authority: &Authority) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (_, conns) = idle.iter_mut().find(|(a, _)| a == authority)?;
        // Most recently used first: the warmest connection, and stale ones
        // sink to the bottom where the backend closes them.
        while let Some(mut conn) = conns.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, authority: Authority, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = match idle.iter().position(|(a, _)| *a == authority) {
            Some(at) => at,
            None => {
                idle.push((authority, Vec::new()));
                idle.len() - 1
            }
        };
        let conns = &mut idle[at].1;
        if conns.len() < MAX_IDLE_PER_AUTHORITY {
            conns.push(conn);
        }
    }
}

/// Where a connection goes back to when its response is done.
#[derive(Debug)]
pub(crate) struct Home {
    pool: Weak<Pool>,
    authority: Authority,
}

impl Home {
    pub fn new(pool: &Arc<Pool>, authority: Authority) -> Self {
        Self {
            pool: Arc::downgrade(pool),
            authority,
        }
    }

    /// Returns `conn` to the pool, if it is clean and the pool still exists.
    pub fn put(self, mut conn: Conn) {
        if conn.buf.is_empty()
            && let Some(pool) = self.pool.upgrade()
        {
            conn.rest();
            pool.put(self.authority, conn);
        }
    }
}
