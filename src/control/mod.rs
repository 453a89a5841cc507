//! The control socket: the protocol's types (`protocol`), who may do what (`auth`), and
//! the server that makes the socket, accepts connections and hands each request to the
//! event loop (`server`). The loop answers requests in `runtime/control.rs`; nothing
//! here touches the supervisor. docs/protocol.md describes the protocol for clients.

pub mod auth;
pub mod protocol;
pub mod server;

pub use protocol::default_socket_path;
