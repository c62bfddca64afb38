//! Errors that carry the agent's exit code. The codes themselves are part
//! of the host/agent contract: scx_contract::exit.

pub use scx_contract::exit::{BAD_INPUT, FAILED, LOAD_FAILED, NOT_CLEAN, OK};
use std::fmt;

/// An error that knows which exit code it maps to.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: String,
}

impl Exit {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        Exit { code, msg: msg.into() }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Exit {}

/// The exit code for any error: an `Exit` anywhere in the chain wins; an
/// unknown name or a refused configuration is bad input.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| {
            if let Some(x) = e.downcast_ref::<Exit>() {
                Some(x.code)
            } else if e.is::<scx_contract::names::UnknownName>() || e.is::<scx_contract::config::ConfigError>() {
                Some(BAD_INPUT)
            } else {
                None
            }
        })
        .unwrap_or(FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_bad_input_maps_to_2_anywhere_in_the_chain() {
        let e: anyhow::Error = scx_contract::names::Scheduler::parse("scx_rusty").unwrap_err().into();
        assert_eq!(code_of(&e), BAD_INPUT);
        let e = scx_contract::config::Config::load(None, Some("{\"cleanup\": {\"interval_ms\": 0}}")).unwrap_err();
        assert_eq!(code_of(&anyhow::Error::from(e).context("loading the config")), BAD_INPUT);
        assert_eq!(code_of(&anyhow::Error::from(Exit::new(LOAD_FAILED, "verifier"))), LOAD_FAILED);
        assert_eq!(code_of(&anyhow::anyhow!("disk full")), FAILED);
    }
}
