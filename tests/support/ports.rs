//! Free loopback ports for the tests and the load benches (`benches/common` includes this
//! file), never one this process was given before: the kernel may hand a released port out
//! again at once, and a test that asks for several ports before it binds them would otherwise
//! put two listeners on one port (`mqtt[1].listen: … is http.listen too`).

use std::net::TcpListener;
use std::sync::Mutex;

/// A free port on `ip` (any 127.0.0.0/8 address works on Linux).
pub fn free_port_on(ip: &str) -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"));
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}
