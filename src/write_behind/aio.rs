//! The write-behind storage's asynchronous twin: every call answers from
//! the node's memory in place (its futures are ready at the first poll).

use super::{WriteBehind, WriteBehindHandle};
use crate::aio::inline::{answer_in_place, WindowedHit};

impl WindowedHit for WriteBehind {}
impl WindowedHit for WriteBehindHandle {}

answer_in_place!([] WriteBehind);
answer_in_place!([] WriteBehindHandle);
