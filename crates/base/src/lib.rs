//! What every layer of Premise shares and none owns: the [`Clock`] everything that reads the time
//! or waits is given (the machine's in the server, a manual one in tests), [`UnixMs`], the one
//! type a moment crosses a boundary in, and [`Secret`], a value
//! that never reaches a log line. It depends on nothing of Premise's, so the HTTP front, the
//! engine and the upstreams read the time without importing one another.

mod clock;
mod secret;
mod time;

pub use clock::{Clock, Elapsed, millis};
pub use secret::{Secret, text_or_number};
pub use time::UnixMs;
