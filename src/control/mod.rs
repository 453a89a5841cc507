//! The control socket: the protocol's types (`protocol`), who may do what (`auth`), and
//! the server that accepts connections and hands each request to the event loop
//! (`server`). The loop answers requests in `runtime/control.rs`; nothing here touches
//! the supervisor.

pub mod protocol;

pub use protocol::default_socket_path;
