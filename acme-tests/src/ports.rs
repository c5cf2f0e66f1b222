//! Free loopback ports.
//!
//! A port picked here is released before the child binds it, so another process may take it
//! first. Callers tolerate that by retrying the start with fresh ports.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use anyhow::Result;

/// How many times a server start is retried with fresh ports after a failure.
pub const START_ATTEMPTS: usize = 3;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A port on 127.0.0.1 free for both TCP and UDP (DNS listens on both).
pub fn free_tcp_udp_port() -> Result<u16> {
    for _ in 0..20 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no port free for both TCP and UDP on 127.0.0.1")
}
