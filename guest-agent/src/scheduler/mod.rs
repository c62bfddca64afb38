//! A scheduler under test: one of our twenty builds through its skeleton
//! (`sched`), a user's own binary (`usersched`), and how a scheduler we did
//! not load ended (`exitlog`).

pub mod sched;
pub mod usersched;
pub mod exitlog;
