//! Listening until shutdown: the shutdown future made a flag every task can
//! wait on, and accepting connections until it is set.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A flag set once `shutdown` completes; clone it for every task that stops.
pub(crate) fn stop_flag(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Completes once the shutdown flag is set.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The next connection on `listener`, or `None` once the flag is set. A
/// failed accept (out of descriptors and the like) is logged, and the
/// listener tried again after a short pause: it keeps serving.
pub(crate) async fn accept(
    listener: &TcpListener,
    stop: &mut watch::Receiver<bool>,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => return Some(connection),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stopped(stop) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepting_ends_when_the_flag_is_set() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (go, gone) = tokio::sync::oneshot::channel::<()>();
        let mut stop = stop_flag(async {
            let _ = gone.await;
        });
        let addr = listener.local_addr().unwrap();
        let _caller = TcpStream::connect(addr).await.unwrap();
        let (_, peer) = accept(&listener, &mut stop, "test").await.unwrap();
        assert_eq!(peer.ip(), addr.ip());
        go.send(()).unwrap();
        assert!(accept(&listener, &mut stop, "test").await.is_none());
    }
}
