//! The I/O both cnibench binaries need, and nothing more: the coordinator links this
//! crate instead of the whole worker (its HTTP/QUIC servers, certificates and
//! socket options), the way quinn-udp sits beside quinn. Message formats, the frame
//! codec and the handshake proofs stay I/O-free in `cnibench_proto`; this crate puts
//! them on a byte stream and reads the local machine.
//!
//! # Layout
//!
//! - [`conn`]: the framed control connection ([`conn::Connection`]), generic over
//!   `AsyncRead + AsyncWrite` so tests run it over `tokio::io::duplex`.
//! - [`sysinfo`]: what a process can say about its machine (kernel, CPU model and
//!   count, host name, boot id, the MTU of the interface holding an address); the
//!   worker reports it in `Hello`, the coordinator records its own in results.
//! - [`shutdown_signal`]: SIGTERM (what Kubernetes sends) or Ctrl-C.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use cnibench_net::conn::Connection;
//! use cnibench_proto::msg::Msg;
//! let (a, b) = tokio::io::duplex(1024);
//! let (mut a, mut b) = (Connection::new(a), Connection::new(b));
//! a.write_msg(&Msg::Stop { job: 1 }).await.unwrap();
//! assert_eq!(b.read_msg().await.unwrap(), Some(Msg::Stop { job: 1 }));
//! drop(a);
//! assert_eq!(b.read_msg().await.unwrap(), None);
//! # }
//! ```

pub mod conn;
pub mod sysinfo;

/// Wait for SIGTERM (what Kubernetes sends) or Ctrl-C; both binaries use it to
/// stop traffic and write what they have before exiting.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
