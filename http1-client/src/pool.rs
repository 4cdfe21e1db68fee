//! Idle connections by backend authority.

use std::sync::{Arc, Mutex};

use http::uri::Authority;

use crate::conn::Conn;

/// Idle connections kept per backend authority; more are closed when returned.
const MAX_IDLE_PER_AUTHORITY: usize = 256;

/// A gateway calls few distinct backends per worker: a short list scanned
/// by equality beats hashing. Authorities match byte for byte (a gateway
/// spells each backend the same way every time; a differently cased
/// spelling only gets connections of its own).
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<(Authority, Vec<Conn>)>>,
}

impl Pool {
    /// The slot of `authority`'s connections, made on first use: a request
    /// looks its backend up once, and its connection goes back by index.
    pub fn slot(&self, authority: &Authority) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle
            .iter()
            .position(|(a, _)| a.as_str() == authority.as_str())
        {
            Some(at) => at,
            None => {
                idle.push((authority.clone(), Vec::new()));
                idle.len() - 1
            }
        }
    }

    pub fn checkout(&self, slot: usize) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (_, conns) = idle.get_mut(slot)?;
        // Most recently used first: the warmest connection, and stale ones
        // sink to the bottom where the backend closes them.
        while let Some(mut conn) = conns.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, slot: usize, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, conns)) = idle.get_mut(slot)
            && conns.len() < MAX_IDLE_PER_AUTHORITY
        {
            conns.push(conn);
        }
    }
}

/// Where a connection goes back to when its response is done.
#[derive(Debug)]
pub(crate) struct Home {
    pool: Arc<Pool>,
    slot: usize,
}

impl Home {
    pub fn new(pool: &Arc<Pool>, slot: usize) -> Self {
        Self {
            pool: pool.clone(),
            slot,
        }
    }

    /// Returns `conn` to the pool, if it is clean.
    pub fn put(self, mut conn: Conn) {
        if conn.buf.is_empty() {
            conn.rest();
            self.pool.put(self.slot, conn);
        }
    }
}
