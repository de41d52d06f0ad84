//! The tests' free-port helper never hands a port out twice: tests ask for several ports
//! before they bind any, and the kernel may give a released port back at once.

mod support;

use std::collections::HashSet;

#[test]
fn free_ports_are_never_handed_out_twice() {
    // Enough draws that the kernel's ephemeral range repeats itself many times over.
    let ports: Vec<u16> = (0..2000).map(|_| support::free_port()).collect();
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
}
