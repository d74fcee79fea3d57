//! End-to-end tests of the demo app over real loopback sockets: demo servers calling each
//! other, a recording upstream and a recording HTTP proxy written here. No mocks.

mod chain;
mod faults;
mod outbound;
mod support;
